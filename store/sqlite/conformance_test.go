package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ssechat/ssechat/store/sqlite"
	"github.com/ssechat/ssechat/store/storetest"
)

var _ storetest.Store = (*sqlite.Store)(nil)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "chat.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
