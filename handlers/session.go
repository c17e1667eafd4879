package handlers

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/chat"
)

const (
	sessionCookie = "session"
	userKey       = "user"
	sessionKey    = "session"
)

// authenticate accepts `Authorization: Bearer TOKEN` or the session cookie
// (all a browser's EventSource can send). Cookies ride along on cross-site
// requests, so a cookie-authenticated write must also prove it came from
// our own page: a JSON content type, which no HTML form can send, and a
// same-origin Origin when the browser sends one.
func (s *Server) authenticate(c *gin.Context) {
	token, fromCookie := bearerToken(c.Request), false
	if token == "" {
		if ck, err := c.Request.Cookie(sessionCookie); err == nil {
			token, fromCookie = ck.Value, true
		}
	}
	user, renewed, err := s.accounts.Authenticate(c.Request.Context(), token)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	if renewed && fromCookie {
		// The session's expiry slid forward: so does the cookie's.
		setSessionCookie(c, token, s.accounts.SessionTTL())
	}
	if fromCookie && c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
		if !isJSON(c.Request.Header.Get("Content-Type")) {
			s.fail(c, chat.Errorf(chat.EINVALID, "Content-Type must be application/json"), http.StatusUnsupportedMediaType)
			return
		}
		if !sameOrigin(c.Request) {
			s.fail(c, chat.Errorf(chat.EFORBIDDEN, "cross-origin request refused"), 0)
			return
		}
	}
	c.Set(userKey, user)
	c.Set(sessionKey, s.accounts.SessionKey(token))
	c.Next()
}

// sameOrigin refuses a cross-site login, which would sign the victim's
// browser into the attacker's account.
func (s *Server) sameOrigin(c *gin.Context) {
	if !sameOrigin(c.Request) {
		s.fail(c, chat.Errorf(chat.EFORBIDDEN, "cross-origin request refused"), 0)
		return
	}
	c.Next()
}

// requireJSON refuses bodies a cross-site HTML form could send.
func (s *Server) requireJSON(c *gin.Context) {
	if !isJSON(c.Request.Header.Get("Content-Type")) {
		s.fail(c, chat.Errorf(chat.EINVALID, "Content-Type must be application/json"), http.StatusUnsupportedMediaType)
		return
	}
	c.Next()
}

func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// sameOrigin reports whether the request's Origin, if any, names the host
// it was sent to. Schemes are not compared: behind a TLS-terminating proxy
// the server cannot know its own.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func currentUser(c *gin.Context) string { return c.GetString(userKey) }

func setSessionCookie(c *gin.Context, token string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     sessionCookie,
		Value:    token,
		Path:     "/",
		MaxAge:   int(maxAge.Seconds()),
		HttpOnly: true,
		Secure:   c.GetBool(httpsKey), // over TLS, here or at a trusted proxy (edge.go)
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) login(c *gin.Context) {
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &body); err != nil {
		s.fail(c, err, 0)
		return
	}
	attempt, ok := s.admitLogin(c, body.Username)
	if !ok {
		return
	}
	token, username, err := s.accounts.Login(c.Request.Context(), body.Username, body.Password)
	s.loginDone(c, attempt, err)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	setSessionCookie(c, token, s.accounts.SessionTTL())
	c.JSON(http.StatusOK, gin.H{"token": token, "username": username})
}

// logout ends the caller's session, or with ?all=1 every session of the
// user (every device, every instance); the streams they opened end too.
func (s *Server) logout(c *gin.Context) {
	all := false
	switch c.Query("all") {
	case "", "0", "false":
	case "1", "true":
		all = true
	default:
		s.fail(c, chat.Errorf(chat.EINVALID, "all must be 1 or 0"), 0)
		return
	}
	token := bearerToken(c.Request)
	if token == "" {
		if ck, err := c.Request.Cookie(sessionCookie); err == nil {
			token = ck.Value
		}
	}
	var err error
	if all {
		err = s.accounts.LogoutAll(c.Request.Context(), currentUser(c))
	} else {
		err = s.accounts.Logout(c.Request.Context(), token)
	}
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	setSessionCookie(c, "", -time.Second)
	c.Status(http.StatusNoContent)
}

func (s *Server) me(c *gin.Context) {
	user := currentUser(c)
	c.JSON(http.StatusOK, gin.H{"username": user, "rooms": s.chat.RoomsOf(c.Request.Context(), user)})
}
