package handlers

import (
	"io/fs"
	"net/http"
	pathpkg "path"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/chat"
)

// contentSecurityPolicy allows only our own scripts, styles and connections:
// even if a message slipped into the page as HTML, no injected script runs.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// serveStatic serves the embedded client for GETs outside /api, and JSON
// 404s for everything else the router does not know.
func (s *Server) serveStatic(c *gin.Context) {
	path := c.Request.URL.Path
	if strings.HasPrefix(path, "/api/") || path == "/api" ||
		(c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead) {
		s.fail(c, chat.Errorf(chat.ENOTFOUND, "no route %s %s", c.Request.Method, path), 0)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	// No directory listings: they would show what the client is made of
	// under a 404 status, since gin sets it before NoRoute runs.
	if name := strings.Trim(pathpkg.Clean(path), "/"); name != "" {
		if info, err := fs.Stat(s.static, name); err == nil && info.IsDir() {
			c.String(http.StatusNotFound, "404 page not found")
			return
		}
	}
	http.FileServerFS(s.static).ServeHTTP(c.Writer, c.Request)
}
