package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssechat/ssechat/client"
)

const defaultURL = "http://localhost:8080"

// environment is what chat takes from its environment: the server, the
// session, where its files go.
type environment struct {
	url          string // the server, normalized: see serverURL
	token        string // CHAT_TOKEN: overrides the stored session
	password     string // CHAT_PASSWORD
	retryTimeout time.Duration
	configDir    string // $XDG_CONFIG_HOME/ssechat
	stateDir     string // $XDG_STATE_HOME/ssechat
}

// loadEnvironment reads and checks the environment; a bad setting is a
// usage error.
func loadEnvironment(getenv func(string) string) (*environment, error) {
	env := &environment{
		token:        getenv("CHAT_TOKEN"),
		password:     getenv("CHAT_PASSWORD"),
		retryTimeout: client.DefaultRetryTimeout,
	}
	raw := getenv("CHAT_URL")
	if raw == "" {
		raw = defaultURL
	}
	u, err := serverURL(raw)
	if err != nil {
		return nil, usageErrorf("CHAT_URL=%q: %v", raw, err)
	}
	env.url = u
	if s := getenv("CHAT_RETRY_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return nil, usageErrorf("CHAT_RETRY_TIMEOUT=%q is not a duration such as 30s or 2m", s)
		}
		env.retryTimeout = d
	}
	config, err := xdgDir(getenv, "XDG_CONFIG_HOME", ".config")
	if err != nil {
		return nil, err
	}
	state, err := xdgDir(getenv, "XDG_STATE_HOME", filepath.Join(".local", "state"))
	if err != nil {
		return nil, err
	}
	env.configDir = filepath.Join(config, "ssechat")
	env.stateDir = filepath.Join(state, "ssechat")
	return env, nil
}

// serverURL checks that raw is an http(s) URL and normalizes it, so that
// one server has one session file whichever way it is written: scheme and
// host in lower case, no trailing slash.
func serverURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an http:// or https:// URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("a server URL takes no user, query or fragment")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return strings.TrimRight(u.String(), "/"), nil
}

// xdgDir is the XDG base directory named by variable, or fallback under
// the home directory. The specification ignores a relative path.
func xdgDir(getenv func(string) string, variable, fallback string) (string, error) {
	if d := getenv(variable); filepath.IsAbs(d) {
		return d, nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", usageErrorf("neither %s nor HOME is set: chat has nowhere to keep its files", variable)
	}
	return filepath.Join(home, fallback), nil
}

// session is what login stores for one server.
type session struct {
	URL   string `json:"url"`
	User  string `json:"user"`
	Token string `json:"token"`
}

// sessionPath is the file of the server's session: one per server URL,
// named by the URL escaped, so that logging in to another server does not
// log out of this one.
func (env *environment) sessionPath() string {
	return filepath.Join(env.configDir, "sessions", url.QueryEscape(env.url))
}

// loadSession returns the stored session of the server, or nil if there
// is none.
func (env *environment) loadSession() (*session, error) {
	data, err := os.ReadFile(env.sessionPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the session: %w", err)
	}
	var s session
	if err := json.Unmarshal(data, &s); err != nil || s.Token == "" {
		return nil, fmt.Errorf("%s is not a session file: log in again with: chat login USER", env.sessionPath())
	}
	return &s, nil
}

// saveSession stores the session, readable by the user alone.
func (env *environment) saveSession(s session) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(env.configDir, env.sessionPath(), append(data, '\n'), true); err != nil {
		return fmt.Errorf("storing the session: %w", err)
	}
	return nil
}

// removeSession deletes the stored session; none is not an error.
func (env *environment) removeSession() error {
	err := os.Remove(env.sessionPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the session: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data: readers see the old file or
// the new one, never a part. The file is 0600. If root is not "", path is
// below it (chat's own directory), and root and the directories down to
// path are made 0700, even if they existed. With sync, the data is on
// disk before the rename.
func writeFileAtomic(root, path string, data []byte, sync bool) error {
	dir := filepath.Dir(path)
	if root != "" {
		if err := ownDirs(root, dir); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(dir, ".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a failure; a renamed file is gone by then
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ownDirs makes dir and the directories between it and root, root
// included, and leaves each 0700.
func ownDirs(root, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is not below %s", dir, root)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
		if d == root || d == filepath.Dir(d) {
			return nil
		}
	}
}

// sessionToken returns the session token to use: CHAT_TOKEN, else the stored
// one; none is exit status 3.
func (env *environment) sessionToken() (string, error) {
	if env.token != "" {
		return env.token, nil
	}
	s, err := env.loadSession()
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", failf(exitAuth, "not logged in on %s: log in with: chat login USER", env.url)
	}
	return s.Token, nil
}

// newClient returns a client of the server with the given session token
// ("" for none).
func (env *environment) newClient(token string) *client.Client {
	opts := []client.Option{client.WithRetryTimeout(env.retryTimeout)}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	return client.New(env.url, opts...)
}

// loggedIn returns a client with the session token.
func (env *environment) loggedIn() (*client.Client, error) {
	token, err := env.sessionToken()
	if err != nil {
		return nil, err
	}
	return env.newClient(token), nil
}
