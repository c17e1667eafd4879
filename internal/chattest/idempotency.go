package chattest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// Answer is a POST's answer: its status, the event of a 2xx and the
// error of anything else.
type Answer struct {
	Status int
	Event  Event
	Error  string
}

// PostKeyed posts text to path (a room's or a user's messages) with the
// Idempotency-Key key ("" sends none).
func (c *Client) PostKeyed(path, key, text string) Answer {
	c.t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	req, err := http.NewRequest("POST", c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp := c.Raw(req)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := Answer{Status: resp.StatusCode}
	var out struct{ Error string }
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, &a.Event); err != nil {
			c.t.Fatalf("POST %s: decode %q: %v", path, data, err)
		}
	} else if err := json.Unmarshal(data, &out); err == nil {
		a.Error = out.Error
	}
	return a
}
