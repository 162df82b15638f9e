// Command restartbench measures a binary self-upgrade under HTTP load: it
// starts the service of package testserver (itself, re-executed), runs wrk
// against its health endpoint (or -path /hello), and sends SIGHUP several times while wrk
// runs, each after the previous old process has exited. It prints wrk's
// report (latency, socket errors, non-2xx answers: the old process's
// "draining"), and how long each new process took to be ready.
//
//	go build -o bin/restartbench ./upgrade/internal/restartbench
//	bin/restartbench -duration 20s -sighups 10 -connections 50
//
// `make bench-restart` does that. Traffic goes to 127.0.0.1 only.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/hotline-go/hotline/upgrade/internal/testserver"
)

func main() {
	if code, ran := testserver.Main(); ran {
		os.Exit(code)
	}
	var (
		duration    = flag.Duration("duration", 20*time.Second, "how long wrk runs")
		sighups     = flag.Int("sighups", 10, "SIGHUPs sent while wrk runs, evenly spaced")
		connections = flag.Int("connections", 50, "wrk's connections")
		threads     = flag.Int("threads", 2, "wrk's threads")
		lameDuck    = flag.Duration("lame-duck", 0, "the server's lame-duck period (upgrade.WithLameDuck)")
		path        = flag.String("path", "/healthz", "what wrk asks for: /healthz or /hello")
		wrk         = flag.String("wrk", "wrk", "the wrk executable")
	)
	flag.Parse()
	if err := run(*duration, *sighups, *connections, *threads, *lameDuck, *path, *wrk); err != nil {
		fmt.Fprintln(os.Stderr, "restartbench:", err)
		os.Exit(1)
	}
}

// waitUntil polls cond every 500µs for at most limit.
func waitUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(500 * time.Microsecond)
	}
	return true
}

func run(duration time.Duration, sighups, connections, threads int, lameDuck time.Duration, path, wrk string) (err error) {
	dir, err := os.MkdirTemp("", "restartbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := testserver.Config{Dir: dir, UpgradeTimeout: 10 * time.Second, DrainTimeout: 10 * time.Second, LameDuck: lameDuck}
	for _, p := range []struct {
		addr    *string
		network string
	}{{&cfg.TCP, "tcp"}, {&cfg.UDP, "udp"}, {&cfg.HTTP, "tcp"}} {
		if *p.addr, err = testserver.FreeAddr(p.network); err != nil {
			return err
		}
	}
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	defer func() {
		if err != nil {
			if b, rerr := os.ReadFile(logPath); rerr == nil {
				fmt.Fprintf(os.Stderr, "server log:\n%s", b)
			}
		}
	}()

	server := exec.Command(exe)
	server.Env = append(os.Environ(), cfg.Environ()...)
	server.Stdout, server.Stderr = logf, logf
	if err := server.Start(); err != nil {
		return err
	}
	go func() { _ = server.Wait() }()
	pid := server.Process.Pid
	// Whatever happens, stop the generation that serves.
	defer func() {
		if cur := testserver.ReadPID(cfg.PIDFile()); cur != 0 && testserver.Running(cur) {
			_ = syscall.Kill(cur, syscall.SIGTERM)
			if !waitUntil(15*time.Second, func() bool { return !testserver.Running(cur) }) {
				_ = syscall.Kill(cur, syscall.SIGKILL)
			}
		}
	}()
	url := "http://" + cfg.HTTP + path
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if !waitUntil(15*time.Second, func() bool {
		if testserver.ReadPID(cfg.PIDFile()) != pid {
			return false
		}
		resp, err := client.Get("http://" + cfg.HTTP + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		return fmt.Errorf("server %d did not become ready", pid)
	}

	var out bytes.Buffer
	w := exec.Command(wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(connections),
		"-d", fmt.Sprintf("%ds", int(duration.Seconds())), "--latency", url)
	w.Stdout, w.Stderr = &out, &out
	start := time.Now()
	if err := w.Start(); err != nil {
		return fmt.Errorf("start wrk: %w", err)
	}
	wrkDone := make(chan error, 1)
	go func() { wrkDone <- w.Wait() }()

	interval := duration / time.Duration(max(sighups, 0)+1)
	var ready, gone []time.Duration
	for i := range sighups {
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * interval)))
		old := testserver.ReadPID(cfg.PIDFile())
		t0 := time.Now()
		if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
			return err
		}
		var next int
		if !waitUntil(15*time.Second, func() bool {
			next = testserver.ReadPID(cfg.PIDFile())
			return next != old && next != 0
		}) {
			return fmt.Errorf("SIGHUP %d: no new process", i+1)
		}
		ready = append(ready, time.Since(t0))
		if !waitUntil(15*time.Second, func() bool { return !testserver.Running(old) }) {
			return fmt.Errorf("SIGHUP %d: old process %d did not exit", i+1, old)
		}
		gone = append(gone, time.Since(t0))
		// The next SIGHUP is refused until the new process has seen the old
		// one exit.
		marker := fmt.Sprintf(`msg="upgrade: previous process exited" pid=%d`, next)
		if !waitUntil(15*time.Second, func() bool {
			b, err := os.ReadFile(logPath)
			return err == nil && bytes.Contains(b, []byte(marker))
		}) {
			return fmt.Errorf("SIGHUP %d: process %d did not see its predecessor exit", i+1, next)
		}
	}
	if err := <-wrkDone; err != nil {
		return fmt.Errorf("wrk: %w\n%s", err, out.String())
	}

	fmt.Printf("wrk -t%d -c%d -d%v --latency %s, %d SIGHUPs every %v, lame duck %v\n\n",
		threads, connections, duration, url, sighups, interval.Round(time.Millisecond), lameDuck)
	fmt.Print(out.String())
	fmt.Printf("\nSIGHUP to new process ready (PID file written): %s\n", summary(ready))
	fmt.Printf("SIGHUP to old process exited:                   %s\n", summary(gone))
	logText, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	fmt.Printf("refused upgrades: %d, failed upgrades: %d\n",
		bytes.Count(logText, []byte(`msg="upgrade: request refused"`)),
		bytes.Count(logText, []byte(`msg="upgrade: new process failed`)))
	return nil
}

func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("min %v, median %v, max %v (n=%d)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}
