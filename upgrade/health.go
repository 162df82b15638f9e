package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// State is where a process is in its life, as the health handler reports it.
type State int

const (
	// StateStarting: the Restarter exists and Ready has not been called; the
	// previous process, if any, still serves.
	StateStarting State = iota
	// StateReady: this process serves (an upgrade may be in progress; until
	// the new process is ready this one goes on serving).
	StateReady
	// StateDraining: a new process took over, or Drain was called; this one
	// finishes its in-flight work and exits.
	StateDraining
	// StateStopped: Stop was called.
	StateStopped
)

// String returns the word the health handler answers: "starting", "ready",
// "draining" or "stopped".
func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateDraining:
		return "draining"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// HealthHandler returns a readiness endpoint for load balancers and
// Kubernetes probes: 200 "ready" while this process serves, 503 "starting"
// before [Restarter.Ready], and 503 "draining" (or "stopped") once a new
// process took over or this one drains (lame duck). The body is the state and
// a newline. Once draining, each response also asks the client to close its
// connection, so a prober on a keep-alive connection reconnects, to the new
// process if there is one.
func (r *Restarter) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s := r.State()
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		code := http.StatusServiceUnavailable
		switch s {
		case StateReady:
			code = http.StatusOK
		case StateDraining, StateStopped:
			h.Set("Connection", "close")
		}
		w.WriteHeader(code)
		if req.Method != http.MethodHead {
			_, _ = fmt.Fprintln(w, s)
		}
	})
}

// LameDuck wraps h for a process that may be replaced: once it drains, every
// response carries "Connection: close", so keep-alive clients finish the
// request they sent and reconnect (to the new process, after a handoff)
// instead of having an idle connection closed under them by
// [net/http.Server.Shutdown], which a client that does not retry sees as an
// error. Give it time with [WithLameDuck].
func (r *Restarter) LameDuck(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.State() >= StateDraining {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, req)
	})
}

// UpgradeHandler returns the admin command as an HTTP endpoint: a POST runs
// [Restarter.Upgrade] with the request's context and answers 200 when the new
// process took over, 409 when an upgrade is already in progress, 503 when
// this process is not ready or drains, 502 with the reason when the new
// process failed, and 500 otherwise; other methods get 405. The body is a
// line of text. Serve it only where operators can reach it (a loopback or
// admin listener): anyone who can POST to it can restart the service.
func (r *Restarter) UpgradeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "upgrade: use POST", http.StatusMethodNotAllowed)
			return
		}
		err := r.Upgrade(req.Context())
		var code int
		switch {
		case err == nil:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = fmt.Fprintln(w, "upgrade: new process ready; this process drains")
			return
		case errors.Is(err, ErrUpgradeInProgress):
			code = http.StatusConflict
		case errors.Is(err, ErrNotReady), errors.Is(err, ErrDraining):
			code = http.StatusServiceUnavailable
		case errors.Is(err, ErrChildFailed), errors.Is(err, ErrChildTimeout):
			code = http.StatusBadGateway
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			code = http.StatusGatewayTimeout
		default:
			code = http.StatusInternalServerError
		}
		http.Error(w, err.Error(), code)
	})
}
