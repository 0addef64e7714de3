package collector

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// BasicAuth is the one credential that both ingest routes require when it is set: the one
// that Sora's webhook_basic_authn settings make it send.
type BasicAuth struct {
	User     string
	Password string
}

// String hides the password, so that a BasicAuth printed by mistake leaks nothing.
func (b BasicAuth) String() string { return "BasicAuth{User: " + b.User + ", Password: <redacted>}" }

func (b *BasicAuth) validate() error {
	switch {
	case b.User == "":
		return errors.New("collector: basic auth: empty user")
	case strings.Contains(b.User, ":"):
		// RFC 7617 section 2: the user-id cannot contain a colon.
		return errors.New("collector: basic auth: the user must not contain a colon")
	case b.Password == "":
		return errors.New("collector: basic auth: empty password")
	}
	return nil
}

// Reasons of a 401, the values of the reason label of kohaku_receiver_auth_failures_total.
const (
	authMissing = "missing" // no Basic credentials in the request
	authWrong   = "wrong"   // a user or password that differs
)

// authError is a request refused for its credentials: 401 with WWW-Authenticate.
type authError struct{ reason string }

func (e *authError) Error() string {
	if e.reason == authMissing {
		return "basic authentication required"
	}
	return "wrong user or password"
}

var (
	errAuthMissing = &authError{reason: authMissing}
	errAuthWrong   = &authError{reason: authWrong}
)

// credential is a BasicAuth kept as hashes: comparing fixed-size hashes in constant time
// reveals neither the length nor any prefix of the expected user and password.
type credential struct {
	user, password [sha256.Size]byte
}

func newCredential(b *BasicAuth) *credential {
	if b == nil {
		return nil
	}
	return &credential{user: sha256.Sum256([]byte(b.User)), password: sha256.Sum256([]byte(b.Password))}
}

// check returns nil when r carries the credential, errAuthMissing or errAuthWrong otherwise.
// A nil credential accepts every request.
func (c *credential) check(r *http.Request) *authError {
	if c == nil {
		return nil
	}
	user, password, ok := r.BasicAuth()
	if !ok {
		return errAuthMissing
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	// Both comparisons always run and are combined without branching, so that timing does
	// not tell a wrong user from a wrong password.
	if subtle.ConstantTimeCompare(u[:], c.user[:])&subtle.ConstantTimeCompare(p[:], c.password[:]) != 1 {
		return errAuthWrong
	}
	return nil
}
