package stream

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectOption configures Connect.
type ConnectOption func(*connectOptions)

type connectOptions struct {
	retry     bool
	onConnect func()
}

// RetryOnFailedConnect makes Connect return at once when NATS cannot be reached yet and keep
// connecting in the background, so that a service can start before NATS does. Without it,
// an unreachable server is Connect's error.
func RetryOnFailedConnect() ConnectOption {
	return func(o *connectOptions) { o.retry = true }
}

// OnConnect makes the connection call f after it connected and after every reconnection,
// e.g. to create the stream again (a NATS server restarted without its data lost it). f
// runs on the connection's callback goroutine and must not block.
func OnConnect(f func()) ConnectOption {
	return func(o *connectOptions) { o.onConnect = f }
}

// Connect returns a connection to the NATS server at url, named name, that reconnects
// forever. It notices a silently dead server within about 20 s (pings every 10 s, two
// outstanding at most) and logs each connection, disconnection, reconnection and
// asynchronous error once to log: a disconnection with an error at Warn, a clean one (Close,
// Drain) at Info. nats.go logs from a goroutine of its own: close with Close to have the
// last line written before going on.
func Connect(url, name string, log *slog.Logger, opts ...ConnectOption) (*nats.Conn, error) {
	var o connectOptions
	for _, opt := range opts {
		opt(&o)
	}
	connected := func(nc *nats.Conn, msg string) {
		log.Info(msg, "url", nc.ConnectedUrlRedacted())
		if o.onConnect != nil {
			o.onConnect()
		}
	}
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(o.retry),
		nats.ReconnectWait(500*time.Millisecond),
		// Receivers behind one load balancer must not all come back in the same instant.
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// The default (2 minutes, 2 outstanding) notices a dead server only after 4 minutes.
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(nc *nats.Conn) { connected(nc, "nats connected") }),
		nats.ReconnectHandler(func(nc *nats.Conn) { connected(nc, "nats reconnected") }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				log.Info("nats disconnected") // Close or Drain: part of a clean shutdown
				return
			}
			log.Warn("nats disconnected", "err", err)
		}),
		// Asynchronous errors, such as a slow consumer dropping messages: the service goes
		// on (unacknowledged messages come again), but the operator should know.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("nats error", "subject", subject, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}

// Close closes nc and returns once the handlers that its closing queued have run, so that
// the disconnection is logged before whatever the caller writes next (a command's summary
// line) and is not lost when the process exits. It replaces nc's closed handler.
func Close(nc *nats.Conn) {
	if nc.IsClosed() {
		return // closed before: no handler would run again
	}
	closed := make(chan struct{})
	// nats.go queues the closed handler after the disconnected one, on one goroutine.
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	nc.Close()
	<-closed
}
