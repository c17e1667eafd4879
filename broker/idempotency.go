package broker

import (
	"bytes"
	"context"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// Idempotency-Keys are judged where the log's lock is held, in validate:
// the store hands the append the keys of its batch that it holds, read
// under the lock, and stores the keys of the events it appends in the
// same transaction. So of two writes with one key, on one instance or
// two, in one batch or two, one appends and the other gets its event.

// PostRoomOnce is PostRoom with user's Idempotency-Key (once; the zero
// Once is none). A write with a key that user gave an earlier write in
// the last chat.IdempotencyTTL appends and sends nothing: it answers with
// that write's event and repeat true, or with chat.EUNPROCESSABLE if
// that write asked for something else.
func (b *Broker) PostRoomOnce(ctx context.Context, user, room, text string, once chat.Once) (e chat.Event, repeat bool, err error) {
	return b.post(ctx, chat.Event{Kind: chat.KindMessage, Room: room, From: user, Text: text}, once)
}

// PostPrivateOnce is PostPrivate with from's Idempotency-Key: see
// PostRoomOnce.
func (b *Broker) PostPrivateOnce(ctx context.Context, from, to, text string, once chat.Once) (e chat.Event, repeat bool, err error) {
	return b.post(ctx, chat.Event{Kind: chat.KindPrivate, From: from, To: to, Text: text}, once)
}

// Repeat answers a write that carries writer's Idempotency-Key once but
// that may no longer be made (the room's membership changed since, say):
// if an earlier write with the key posted the same request in the last
// chat.IdempotencyTTL, its event and true; if it asked for something
// else, chat.EUNPROCESSABLE; if the key is new, false. Without the lock
// it can miss a write still being appended: the write it answers for is
// then refused as any new one would be, which is what the caller does
// with false.
func (b *Broker) Repeat(ctx context.Context, writer string, once chat.Once) (chat.Event, bool, error) {
	if !once.Given() {
		return chat.Event{}, false, nil
	}
	once.User = writer
	done, err := b.store.KeyedEvents(ctx, []chat.Once{once})
	if err != nil || len(done) == 0 {
		return chat.Event{}, false, err
	}
	d := done[0]
	switch {
	case time.Since(d.Event.TS) >= chat.IdempotencyTTL:
		return chat.Event{}, false, nil
	case !bytes.Equal(d.Request, once.Request):
		return chat.Event{}, false, errKeyReused(once.Key)
	}
	return d.Event, true, nil
}

func (b *Broker) post(ctx context.Context, e chat.Event, once chat.Once) (chat.Event, bool, error) {
	if once.Given() {
		once.User = e.From // keys are the writer's own, whatever the caller said
	}
	res := b.submitOnce(ctx, e, once)
	return res.event, res.repeat, res.err
}

// answer replies to the write and to the repeats of its key in its batch.
func (r *request) answer(res result) {
	r.reply <- res
	for _, rep := range r.repeats {
		rep.reply <- result{event: res.event, repeat: res.err == nil, err: res.err}
	}
}

// batchKeys are the keys the writes of batch carry; nil if none does.
func batchKeys(batch []*request) []chat.Once {
	var keys []chat.Once
	for _, req := range batch {
		if req.once.Given() {
			keys = append(keys, req.once)
		}
	}
	return keys
}

type onceID struct{ user, key string }

func idOf(o chat.Once) onceID { return onceID{o.User, o.Key} }

// keyState is what validate knows of the keys of one batch.
type keyState struct {
	live    map[onceID]chat.KeyedEvent // the log's keys that have not expired
	pending map[onceID]*request        // keys of writes accepted earlier in the batch
}

func newKeyState(done []chat.KeyedEvent, now time.Time) keyState {
	k := keyState{}
	for _, d := range done {
		// A key's age is its event's: a row that pruning has not reached
		// yet is expired all the same, and the store replaces it.
		if now.Sub(d.Event.TS) >= chat.IdempotencyTTL {
			continue
		}
		if k.live == nil {
			k.live = make(map[onceID]chat.KeyedEvent, len(done))
		}
		k.live[idOf(d.Once)] = d
	}
	return k
}

// answered answers req if its key was used before, in the log or earlier
// in the batch, and reports whether it did. A repeat in the batch is
// answered once the write it repeats is.
func (k *keyState) answered(req *request) bool {
	if !req.once.Given() {
		return false
	}
	id := idOf(req.once)
	if d, ok := k.live[id]; ok {
		if !bytes.Equal(d.Request, req.once.Request) {
			req.reply <- result{err: errKeyReused(req.once.Key)}
		} else {
			req.reply <- result{event: d.Event, repeat: true}
		}
		return true
	}
	if first, ok := k.pending[id]; ok {
		if !bytes.Equal(first.once.Request, req.once.Request) {
			req.reply <- result{err: errKeyReused(req.once.Key)}
		} else {
			first.repeats = append(first.repeats, req)
		}
		return true
	}
	return false
}

// accepted notes that req, whose event is the i-th of the batch's, will
// be appended: its key, if any, goes into once (the keys beside the
// events, as the store takes them) and answers later writes of the batch.
func (k *keyState) accepted(once []chat.Once, i int, req *request) []chat.Once {
	if !req.once.Given() {
		return once
	}
	for len(once) < i {
		once = append(once, chat.Once{})
	}
	if k.pending == nil {
		k.pending = make(map[onceID]*request)
	}
	k.pending[idOf(req.once)] = req
	return append(once, req.once)
}

func errKeyReused(key string) error {
	return chat.Errorf(chat.EUNPROCESSABLE, "%s %q was used for a different message", chat.IdempotencyHeader, key)
}
