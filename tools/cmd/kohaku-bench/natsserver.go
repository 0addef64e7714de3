package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"kohaku/writer/embedded"
)

// runNATS is the nats subcommand: the embedded JetStream server (writer/embedded, the one the
// writer can host) with file storage in dir, in a process of its own so that its CPU and
// memory are not the benchmark's. -sync sets when it syncs to disk (embedded.ParseSync). It
// serves until SIGTERM or SIGINT.
func runNATS(args []string) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "client address")
	dir := fs.String("dir", "", "JetStream storage directory")
	var sync embedded.Sync
	fs.TextVar(&sync, "sync", embedded.Sync{}, "when JetStream syncs to disk: always, default or an interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ns, err := embedded.Start(embedded.Options{Listen: *listen, Dir: *dir, Sync: sync})
	if err != nil {
		return err
	}
	<-ctx.Done()
	ns.Shutdown()
	return nil
}
