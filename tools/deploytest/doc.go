// Package deploytest checks the deployment files at the repository root: that
// docker-compose.yml describes the stack of DESIGN.md (services, replicas, ports, start
// order, environment) and that the configuration files it mounts exist, agree with it and
// are valid for the programs that read them (HAProxy, NATS, Prometheus, Grafana). It holds
// tests only; run them with go test.
package deploytest
