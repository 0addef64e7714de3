// Package deploytest checks what an operator runs on day one. The deployment files:
// docker-compose.yml describes the stack of DESIGN.md (services, replicas, ports, start
// order, environment), the configuration files it mounts exist, agree with it and are valid
// for the programs that read them (HAProxy, NATS, Prometheus, Grafana), the Prometheus
// alerts pass promtool's checks and unit tests and read only metrics that the running
// services export, and every SQL query of the dashboards returns rows on fixture data. The running pieces: `make run` starts a
// working pipeline that takes both of Sora's feeds, and HAProxy with the project's
// configuration loses no stored report of either feed when a receiver behind it is killed.
// It holds tests only; run them with go test.
package deploytest
