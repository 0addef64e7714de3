package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// chromiumFlags make a headless Chromium quiet and self-contained, and let the page use
// fake camera and microphone without a permission prompt.
var chromiumFlags = []string{
	"--headless",
	"--no-sandbox", // the sandbox needs user namespaces, often missing in containers and as root
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--use-fake-ui-for-media-stream",
	"--use-fake-device-for-media-stream",
	"--autoplay-policy=no-user-gesture-required",
	"--allow-loopback-in-peer-connection", // the page calls over loopback candidates only
}

// browser is a running Chromium with its own throwaway profile.
type browser struct {
	cmd     *exec.Cmd
	profile string
	stderr  *tailBuffer
	exited  chan struct{}
	waitErr error
}

// startBrowser starts Chromium at path on url. Its stderr is kept (the last few kilobytes)
// for error messages, and copied to the log when verbose is set.
func startBrowser(log *slog.Logger, path, url string, verbose bool) (*browser, error) {
	profile, err := os.MkdirTemp("", "capture-stats-profile-")
	if err != nil {
		return nil, fmt.Errorf("create chromium profile: %w", err)
	}
	args := append(append([]string{}, chromiumFlags...), "--user-data-dir="+profile, url)
	b := &browser{profile: profile, stderr: &tailBuffer{max: 16 << 10}, exited: make(chan struct{})}
	b.cmd = exec.Command(path, args...)
	var errOut io.Writer = b.stderr
	if verbose {
		errOut = io.MultiWriter(b.stderr, os.Stderr)
	}
	b.cmd.Stdout = errOut
	b.cmd.Stderr = errOut
	ownProcessGroup(b.cmd)
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(profile)
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	log.Info("chromium started", "pid", b.cmd.Process.Pid, "url", url)
	go func() {
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	return b, nil
}

// Exited is closed when Chromium has exited; Err then says how.
func (b *browser) Exited() <-chan struct{} { return b.exited }

// Err describes Chromium's exit, with the end of what it wrote.
func (b *browser) Err() error {
	return fmt.Errorf("chromium exited early (%v): %s", b.waitErr, b.stderr.String())
}

// Stop kills Chromium with all its helper processes, waits for it, and removes its profile.
func (b *browser) Stop(ctx context.Context) {
	killProcessGroup(b.cmd)
	select {
	case <-b.exited:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	os.RemoveAll(b.profile)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
