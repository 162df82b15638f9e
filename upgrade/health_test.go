package upgrade

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(h http.Handler, method string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/healthz", nil))
	return rec
}

func TestHealthHandler(t *testing.T) {
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	h := r.HealthHandler()
	check := func(code int, body, connection string) {
		t.Helper()
		rec := get(h, http.MethodGet)
		assert.Equal(t, code, rec.Code)
		assert.Equal(t, body, rec.Body.String())
		assert.Equal(t, connection, rec.Header().Get("Connection"))
		assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		head := get(h, http.MethodHead)
		assert.Equal(t, code, head.Code)
		assert.Empty(t, head.Body.String())
	}

	check(http.StatusServiceUnavailable, "starting\n", "")
	require.NoError(t, r.Ready())
	check(http.StatusOK, "ready\n", "")

	// An upgrade in progress: the old process still serves.
	reply := make(chan chan error, 1)
	go func() { reply <- <-f.upgrades }()
	done := make(chan error, 1)
	go func() { done <- r.Upgrade(t.Context()) }()
	rc := <-reply
	check(http.StatusOK, "ready\n", "")
	rc <- nil
	require.NoError(t, <-done)
	check(http.StatusServiceUnavailable, "draining\n", "close")

	r.Stop()
	check(http.StatusServiceUnavailable, "stopped\n", "close")
}

func TestLameDuck(t *testing.T) {
	f := newFakeFlip()
	r, _ := testRestarter(t, f)
	require.NoError(t, r.Ready())
	h := r.LameDuck(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("hello"))
	}))
	rec := get(h, http.MethodGet)
	assert.Equal(t, "hello", rec.Body.String())
	assert.Empty(t, rec.Header().Get("Connection"))

	require.NoError(t, r.Drain(t.Context()))
	rec = get(h, http.MethodGet)
	assert.Equal(t, http.StatusOK, rec.Code, "a draining process still serves")
	assert.Equal(t, "hello", rec.Body.String())
	assert.Equal(t, "close", rec.Header().Get("Connection"))
}

func TestUpgradeHandler(t *testing.T) {
	post := func(h http.Handler) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/upgrade", nil))
		return rec
	}
	tests := []struct {
		name   string
		child  error // the outcome of the attempt, if one starts
		setup  func(t *testing.T, r *Restarter, f *fakeFlip)
		code   int
		inBody string
	}{
		{"taken over", nil, nil, http.StatusOK, "new process ready"},
		{"child exited", errors.New("child pid=7 exited: exit status 2"), nil, http.StatusBadGateway, "exit status 2"},
		{"child timed out", errors.New("new child pid=7 timed out"), nil, http.StatusBadGateway, "not ready in time"},
		{"other failure", errors.New("pipe failed"), nil, http.StatusInternalServerError, "pipe failed"},
		{
			name:  "not ready",
			setup: func(*testing.T, *Restarter, *fakeFlip) {},
			code:  http.StatusServiceUnavailable, inBody: "not ready",
		},
		{
			name: "in progress",
			setup: func(t *testing.T, r *Restarter, f *fakeFlip) {
				require.NoError(t, r.Ready())
				go func() { _ = r.Upgrade(context.Background()) }()
				rc := <-f.upgrades
				t.Cleanup(func() { rc <- errors.New("child pid=1 exited") })
			},
			code: http.StatusConflict, inBody: "in progress",
		},
		{
			name: "draining",
			setup: func(t *testing.T, r *Restarter, f *fakeFlip) {
				require.NoError(t, r.Ready())
				require.NoError(t, r.Drain(t.Context()))
			},
			code: http.StatusServiceUnavailable, inBody: "draining",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeFlip()
			r, _ := testRestarter(t, f)
			if tt.setup != nil {
				tt.setup(t, r, f)
			} else {
				require.NoError(t, r.Ready())
				go answer(t, f, tt.child)
			}
			rec := post(r.UpgradeHandler())
			assert.Equal(t, tt.code, rec.Code)
			assert.Contains(t, rec.Body.String(), tt.inBody)
		})
	}

	t.Run("GET", func(t *testing.T) {
		r, _ := testRestarter(t, newFakeFlip())
		rec := get(r.UpgradeHandler(), http.MethodGet)
		assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
		assert.Equal(t, http.MethodPost, rec.Header().Get("Allow"))
	})

	t.Run("client gone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeFlip()
			r, _ := testRestarter(t, f)
			require.NoError(t, r.Ready())
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			rec := httptest.NewRecorder()
			attempt := make(chan chan error, 1)
			go func() { attempt <- <-f.upgrades }()
			r.UpgradeHandler().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, "/upgrade", nil))
			assert.Equal(t, http.StatusGatewayTimeout, rec.Code)
			(<-attempt) <- nil // the attempt ends after the client gave up
			<-r.Exit()
		})
	})
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{
		StateStarting: "starting", StateReady: "ready", StateDraining: "draining",
		StateStopped: "stopped", State(9): "State(9)",
	} {
		assert.Equal(t, want, s.String())
	}
}
