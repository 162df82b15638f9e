package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/actor"
	"github.com/hotline-go/hotline/examples/phoneswitch/exchange"
	"github.com/hotline-go/hotline/examples/phoneswitch/phone"
	"github.com/hotline-go/hotline/flags"
	"github.com/hotline-go/hotline/plugin"
	"github.com/hotline-go/hotline/upgrade"
)

// handoffFault is a test seam, empty in a normal build: the process tests
// build a binary with -ldflags "-X main.handoffFault=restore" whose serve
// receives and restores the live calls and then fails before Ready, as a
// binary that cannot serve them would, so that the old process must resume
// them (and the new one must not have touched a line).
var handoffFault string

type serveConfig struct {
	listen, admin, plugins, version, pidFile, http string
	flagFile                                       string
	inProcess                                      bool
	drainTimeout, pluginTimeout                    time.Duration
	logLevel                                       slog.Level
}

func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:5060", "`ADDR` to serve phone lines on")
	fs.StringVar(&c.admin, "admin", "", "Unix `SOCKET` of the admin API (created 0600)")
	fs.StringVar(&c.plugins, "plugins", "bin/plugins", "`DIR` of the phone-v1 and phone-v2 plugins and their checksums")
	fs.StringVar(&c.version, "version", "v1", "`VERSION` of the phone machine new phones start on")
	fs.StringVar(&c.pidFile, "pid-file", "", "`FILE` that always names the serving process (for kill -HUP)")
	fs.StringVar(&c.http, "http", "", "`ADDR` to serve /healthz and /metrics on")
	fs.BoolVar(&c.inProcess, "in-process", true, "run the phone versions compiled into this binary instead of the plugins")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 30*time.Second, "after a binary restart, how long live calls may go on in the old process")
	fs.DurationVar(&c.pluginTimeout, "plugin-timeout", 5*time.Second, "with --in-process=false, how long a plugin has to handle one event before it is taken for hung, killed and restarted (the event is delivered again)")
	fs.StringVar(&c.flagFile, "flags", "", "`FILE` of feature flags (lines of `name on|off|N%`), loaded at start and again on `ctl flags --reload`")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "`LEVEL` of the logs on stderr")
	if err := fs.Parse(args); err != nil {
		return c, errUsage
	}
	if fs.NArg() != 0 {
		return c, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	if c.admin == "" {
		return c, errors.New("serve: --admin SOCKET is required")
	}
	return c, nil
}

// serve runs the switch until SIGTERM, or until a new binary took over
// after SIGHUP and the calls left here have ended.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel})).With("pid", os.Getpid())
	var wg sync.WaitGroup // the serving goroutines; they end when r closes the listeners
	defer wg.Wait()
	ropts := []upgrade.RestartOption{upgrade.WithLogger(log), upgrade.WithDrainTimeout(cfg.drainTimeout)}
	if cfg.pidFile != "" {
		ropts = append(ropts, upgrade.WithPIDFile(cfg.pidFile))
	}
	r, err := upgrade.NewRestarter(ropts...)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer r.Stop()

	sys := actor.NewSystem(actor.WithLogger(log))
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := sys.Shutdown(sctx); err != nil {
			log.Error("shut down machines", "err", err)
		}
	}()
	// The release handler knows every phone version and starts every
	// phone; it runs the upgrades, rollbacks and the admin API, and the
	// plugins' processes (it stops them as it closes). It closes after the
	// switch has stopped the phones (deferred later, run earlier).
	metrics := &upgrade.PromMetrics{}
	// Feature flags, set with `ctl flags`; the phones' handlers read them
	// (the handoff gives restored phones the same set).
	fl := flags.New(flags.WithLogger(log))
	if cfg.flagFile != "" {
		if _, err := fl.LoadFile(cfg.flagFile, "serve --flags"); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	rh, err := upgrade.NewReleaseHandler(sys, upgrade.WithReleaseLogger(log), upgrade.WithMetrics(metrics), upgrade.WithFlags(fl),
		upgrade.WithPluginOptions(plugin.WithLogger(log), plugin.WithIdleStop(pluginIdleStop), plugin.WithCallTimeout(cfg.pluginTimeout)))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := rh.Close(cctx); err != nil {
			log.Error("close the release handler", "err", err)
		}
	}()
	versions, err := registerPhones(ctx, rh, cfg.inProcess, cfg.plugins, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if !slices.Contains(versions, cfg.version) {
		return fmt.Errorf("serve: --version %s: the phone machine has %v", cfg.version, versions)
	}
	if cfg.version != versions[0] {
		// No phone runs yet: this only makes the version the one new
		// phones start on. After SIGHUP, the handoff then sets the
		// versions of the process this one replaces (current, permanent,
		// rollback history), whatever the flag says.
		if _, err := rh.Upgrade(ctx, phone.Name, cfg.version, upgrade.By("serve --version")); err != nil {
			return fmt.Errorf("serve: --version %s: %w", cfg.version, err)
		}
	}
	h, err := upgrade.NewHandoff(r, sys, upgrade.WithReleaseHandler(rh))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	sw, err := exchange.New(sys, rh,
		exchange.WithLogger(log),
		exchange.WithHandoff(h),
	)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	closeSwitch := sync.OnceValue(func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return sw.Close(cctx)
	})
	defer func() {
		if err := closeSwitch(); err != nil {
			log.Error("close switch", "err", err)
		}
	}()

	ln, err := r.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// The live calls of the process this one replaces (none in the first
	// process), before Ready: on an error this process exits without
	// Ready, and the old one resumes every line.
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	got, err := h.Receive(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := sw.Restore(ctx, got); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if handoffFault == "restore" {
		return fmt.Errorf("serve: %w: a fault built in for the tests", upgrade.ErrHandoff)
	}
	wg.Go(func() {
		if err := sw.Serve(ln); err != nil {
			log.Error("serve phones", "err", err)
		}
	})
	if err := removeStaleSocket(ctx, cfg.admin); err != nil {
		return fmt.Errorf("serve: admin: %w", err)
	}
	adminLn, err := r.Listen("unix", cfg.admin)
	if err != nil {
		return fmt.Errorf("serve: admin: %w", err)
	}
	if err := os.Chmod(cfg.admin, 0o600); err != nil {
		return fmt.Errorf("serve: admin: %w", err)
	}
	// The admin API is the release handler's, on a listener the binary
	// restart hands on; it ends at SIGTERM, or when a new process took
	// over (the drain hook below).
	actx, stopAdmin := context.WithCancel(ctx)
	defer stopAdmin()
	wg.Go(func() {
		if err := rh.ServeAdminListener(actx, adminLn); err != nil {
			log.Error("serve admin", "err", err)
		}
	})
	r.OnDrain(func(context.Context) error {
		stopAdmin()
		return nil
	})

	// Drain hooks run last registered first: HTTP stops, then the lines
	// handed to a new process let go, the phones left here finish their
	// calls (after a handoff) or hang up (SIGTERM).
	r.OnDrain(func(dctx context.Context) error {
		if ctx.Err() == nil { // a new process took over: let calls end
			sw.HandedOver()
			if err := sw.Drain(dctx); err != nil {
				log.Warn("calls still live at the drain deadline; hanging them up", "err", err)
			}
		}
		return closeSwitch()
	})
	if cfg.http != "" {
		hln, err := r.Listen("tcp", cfg.http)
		if err != nil {
			return fmt.Errorf("serve: http: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/healthz", r.HealthHandler())
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			if err := sw.WriteMetrics(w); err != nil {
				log.Warn("metrics", "err", err)
			}
			if _, err := metrics.WriteTo(w); err != nil {
				log.Warn("metrics", "err", err)
			}
			// The soak compares this at its end with its start.
			if _, err := fmt.Fprintf(w, "# HELP go_goroutines Goroutines of the switch.\n# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine()); err != nil {
				log.Warn("metrics", "err", err)
			}
		})
		srv := &http.Server{Handler: r.LameDuck(mux), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(hln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				log.Error("serve http", "err", err)
			}
		})
		r.OnDrain(srv.Shutdown)
	}

	if err := r.Ready(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// This process owns the lines it restored now: serve them (until
	// here it read and wrote none of them, so that the old process could
	// resume them all had Ready failed).
	sw.Ready()
	log.Info("serving", "listen", ln.Addr(), "admin", cfg.admin, "http", cfg.http, "version", currentVersion(rh))
	if err := r.Run(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// removeStaleSocket removes the admin socket file left by a switch that
// died: one that nobody listens on. A live one (a switch running, or the
// process this one replaces) is left alone.
func removeStaleSocket(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil // absent, or not a socket: Listen says what is wrong
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		return c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	return os.Remove(path)
}

// currentVersion is the version new phones start on.
func currentVersion(rh *upgrade.ReleaseHandler) string {
	for _, ms := range rh.Status() {
		if ms.Machine == phone.Name {
			return ms.Current
		}
	}
	return ""
}
