// Command blog-ferretdb runs FerretDB v1.24 (embedded, SQLite handler) for blogscale's
// tests: a MongoDB-wire database on 127.0.0.1:<port> storing its files in <dir>.
//
// Why a wrapper instead of `go install .../cmd/ferretdb`: a binary built by `go install`
// of FerretDB's own main package lacks the generated build/version/version.txt and panics
// at start ("Invalid build/version/version.txt file content", FerretDB issue #2982). The
// check only runs when the main module is github.com/FerretDB/FerretDB; here the main
// module is ours, and FerretDB's embeddable package does the rest (telemetry is disabled
// and locked by that package).
//
// Usage: blog-ferretdb [-port N] -dir DIR [-log-level info]
// Prints "blog-ferretdb ready uri=mongodb://127.0.0.1:N/ pid=P" on stdout once the
// listener is bound (-port 0 picks a free port); exits 0 on SIGTERM/SIGINT after closing the listener and the
// SQLite databases.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 = a free port)")
	dir := flag.String("dir", "", "data directory for the SQLite files (required; created if missing)")
	level := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	flag.Parse()

	if *port < 0 || *port > 65535 || *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: blog-ferretdb -port N -dir DIR [-log-level LEVEL]")
		os.Exit(2)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "blog-ferretdb: bad -log-level %q: %v\n", *level, err)
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "blog-ferretdb: %v\n", err)
		os.Exit(1)
	}
	if err = os.MkdirAll(abs, 0o700); err != nil {
		fmt.Fprintf(os.Stderr, "blog-ferretdb: %v\n", err)
		os.Exit(1)
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "blog-ferretdb: %v\n", err)
		os.Exit(1)
	}

	// New() has bound the listener and opened the backend, so the address is final (port 0
	// picks a free one) and connections queue until Run() accepts them.
	uri := f.MongoDBURI()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	fmt.Printf("blog-ferretdb ready uri=%s pid=%d\n", uri, os.Getpid())

	if err = <-done; err != nil {
		fmt.Fprintf(os.Stderr, "blog-ferretdb: %v\n", err)
		os.Exit(1)
	}
}
