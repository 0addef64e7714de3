// Package embedded runs a NATS server with JetStream inside the process: the writer's
// single-machine mode (KOHAKU_EMBEDDED_NATS) and the tests' hermetic JetStream.
package embedded

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a running embedded NATS server.
type Server struct {
	opts *server.Options
	srv  *server.Server
}

// Options configure Start. Listen is host:port (port 0 picks a free one); Dir holds
// JetStream's files and survives restarts; Sync is when they are synced to disk (the zero
// Sync is nats-server's default interval).
type Options struct {
	Listen string
	Dir    string
	Sync   Sync
	// Name and Routes make the server a member of a JetStream cluster named Cluster whose
	// route listener is ClusterListen.
	Name          string
	Cluster       string
	ClusterListen string
	Routes        []string
}

// Start starts a server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	host, port, err := splitHostPort(o.Listen)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.Dir,
		NoSigs:     true,
		NoLog:      true,
		SyncAlways: o.Sync.Always,
		// Zero leaves nats-server's default, as an absent sync_interval does.
		SyncInterval: o.Sync.Interval,
	}
	if port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if o.Cluster != "" {
		chost, cport, err := splitHostPort(o.ClusterListen)
		if err != nil {
			return nil, err
		}
		opts.Cluster = server.ClusterOpts{Name: o.Cluster, Host: chost, Port: cport}
		opts.Routes = server.RoutesFromStr(joinRoutes(o.Routes))
	}
	s := &Server{opts: opts}
	if err := s.start(); err != nil {
		return nil, err
	}
	// Keep the port: a restart must come back where clients reconnect to.
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	return s, nil
}

func (s *Server) start() error {
	srv, err := server.NewServer(s.opts)
	if err != nil {
		return fmt.Errorf("embedded nats: configure: %w", err)
	}
	go srv.Start()
	// A clustered node is ready only once its JetStream has met its routes; with the race
	// detector on two busy cores that took more than 10 s in CI.
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("embedded nats: not ready to accept connections on %s:%d", s.opts.Host, s.opts.Port)
	}
	s.srv = srv
	return nil
}

// URL returns the client URL, nats://host:port.
func (s *Server) URL() string { return s.srv.ClientURL() }

// Addr returns host:port of the client listener.
func (s *Server) Addr() string { return net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)) }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Restart starts a stopped server again on the same port and data directory.
func (s *Server) Restart() error { return s.start() }

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("embedded nats: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("embedded nats: port of %q: %w", addr, err)
	}
	return host, port, nil
}

func joinRoutes(routes []string) string {
	out := ""
	for i, r := range routes {
		if i > 0 {
			out += ","
		}
		out += "nats://" + r
	}
	return out
}
