package policy

import "sync"

// Limiter counts concurrent sessions (authenticated connections) per user and per app
// instance across the proxy; safe for concurrent use. Keys are opaque: the wiring passes the
// UAA user ID (or the login name for logins without a user) and the instance GUID (or
// process-guid/index).
type Limiter struct {
	maxUser, maxInstance int

	mu        sync.Mutex
	users     map[string]int
	instances map[string]int
}

// NewLimiter returns a limiter for the rules' caps (nil when neither is set: Acquire on a nil
// *Limiter always succeeds).
func (r *Rules) NewLimiter() *Limiter {
	if r.p.MaxSessionsPerUser == 0 && r.p.MaxSessionsPerInstance == 0 {
		return nil
	}
	return &Limiter{maxUser: r.p.MaxSessionsPerUser, maxInstance: r.p.MaxSessionsPerInstance,
		users: map[string]int{}, instances: map[string]int{}}
}

// Acquire counts one more session of user on instance if both caps allow it; release (safe to
// call more than once) ends it. An empty key is not counted for its cap.
func (l *Limiter) Acquire(user, instance string) (release func(), d *Denial) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if user != "" && l.maxUser > 0 && l.users[user] >= l.maxUser {
		return nil, deny(KindSessionsPerUser, "you already have %d open sessions through this ssh-proxy (at most %d per user)", l.users[user], l.maxUser)
	}
	if instance != "" && l.maxInstance > 0 && l.instances[instance] >= l.maxInstance {
		return nil, deny(KindSessionsPerInst, "this app instance already has %d open sessions through this ssh-proxy (at most %d)", l.instances[instance], l.maxInstance)
	}
	inc(l.users, user, 1)
	inc(l.instances, instance, 1)
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			inc(l.users, user, -1)
			inc(l.instances, instance, -1)
			l.mu.Unlock()
		})
	}, nil
}

// Count reports the sessions held by user and on instance.
func (l *Limiter) Count(user, instance string) (int, int) {
	if l == nil {
		return 0, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.users[user], l.instances[instance]
}

// inc adjusts m[k] by d, deleting zero entries so the maps hold only live keys.
func inc(m map[string]int, k string, d int) {
	if k == "" {
		return
	}
	if n := m[k] + d; n > 0 {
		m[k] = n
	} else {
		delete(m, k)
	}
}
