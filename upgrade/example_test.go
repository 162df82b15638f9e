package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/upgrade"
)

// A service that can replace its own binary: it listens through the
// Restarter, stops its HTTP server when it drains, and serves until a new
// process takes over (after SIGHUP) or SIGTERM.
func ExampleNewRestarter() {
	r, err := upgrade.NewRestarter(
		upgrade.WithPIDFile("/run/svc/svc.pid"),
		upgrade.WithLameDuck(500*time.Millisecond), // keep-alive clients leave politely
		upgrade.WithDrainTimeout(20*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()

	ln, err := r.Listen("tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/healthz", r.HealthHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hello") })
	srv := &http.Server{Handler: r.LameDuck(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Print(err)
		}
	}()
	r.OnDrain(srv.Shutdown)

	if err := r.Ready(); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := r.Run(ctx); err != nil {
		log.Print(err)
	}
}

// The health handler through a process's life: starting, ready, and
// draining once it is taken out of service.
func ExampleRestarter_HealthHandler() {
	r, err := upgrade.NewRestarter(
		upgrade.WithSignals(), // this example handles no signal
		upgrade.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()
	health := r.HealthHandler()
	probe := func() {
		rec := httptest.NewRecorder()
		health.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}

	probe()
	if err := r.Ready(); err != nil {
		log.Fatal(err)
	}
	probe()
	if err := r.Drain(context.Background()); err != nil {
		log.Fatal(err)
	}
	probe()
	// Output:
	// 503 starting
	// 200 ready
	// 503 draining
}
