package riverlog

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "riverlog.dev/client/go/riverlogv1"
)

// The tests named Live run against the servers test.sh starts:
// RIVERLOG_ADDR (no auth) and RIVERLOG_AUTH_ADDR, where RIVERLOG_TOKEN may
// publish to orders:* only. They are skipped without them.

func liveClient(t *testing.T, addrVar string, opts ...Option) *Client {
	t.Helper()
	addr := os.Getenv(addrVar)
	if addr == "" {
		t.Skipf("%s not set: run through test.sh", addrVar)
	}
	c, err := Dial(context.Background(), addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func uniqueStream(prefix string) string {
	return fmt.Sprintf("%s:%d", prefix, time.Now().UnixNano())
}

func mustSend(ctx context.Context, t *testing.T, p *Producer, stream string, ev *pb.CloudEvent) *Pending {
	t.Helper()
	pending, err := p.Send(ctx, stream, ev)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return pending
}

func TestLiveProducerResolvesEveryEventInSendOrder(t *testing.T) {
	c := liveClient(t, "RIVERLOG_ADDR")
	ctx := testContext(t)
	mine, other := uniqueStream("go:order"), uniqueStream("go:other")
	p, err := c.NewProducer(ctx, ProducerOptions{MaxBatchEvents: 7, Linger: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var sent []*Pending
	for i := 0; i < 100; i++ {
		stream := mine
		if i%3 == 0 {
			stream = other
		}
		sent = append(sent, mustSend(ctx, t, p, stream, NewEvent("/go", "t", WithID(fmt.Sprintf("e%d", i)))))
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	var next uint64 = 1
	for i, pending := range sent {
		pos, err := pending.Result()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if pos.Id != fmt.Sprintf("e%d", i) {
			t.Fatalf("event %d answered as %s", i, pos.Id)
		}
		if i%3 != 0 {
			if pos.Sequence != next {
				t.Fatalf("event %d: sequence %d, want %d", i, pos.Sequence, next)
			}
			next++
		}
	}
	if _, err := p.Send(ctx, mine, NewEvent("/go", "t")); err != ErrProducerClosed {
		t.Fatalf("send after close: %v", err)
	}
}

func TestLiveProducerARefusedBatchFailsItsOwnEventsWhileOthersCommit(t *testing.T) {
	c := liveClient(t, "RIVERLOG_ADDR")
	ctx := testContext(t)
	stream := uniqueStream("go:mixed")
	p, err := c.NewProducer(ctx, ProducerOptions{Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	before := mustSend(ctx, t, p, stream, NewEvent("/go", "t", WithID("before")))
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// One batch: a valid event and one without a type.
	sameBatch := mustSend(ctx, t, p, stream, NewEvent("/go", "t", WithID("same-batch")))
	invalid := mustSend(ctx, t, p, stream, NewEvent("/go", "", WithID("bad")))
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	badName := mustSend(ctx, t, p, "not a stream name", NewEvent("/go", "t"))
	after := mustSend(ctx, t, p, stream, NewEvent("/go", "t", WithID("after")))
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if pos, err := before.Result(); err != nil || pos.Sequence != 1 {
		t.Fatalf("before: %v %v", pos, err)
	}
	for _, refused := range []*Pending{sameBatch, invalid} {
		_, err := refused.Result()
		if status.Code(err) != codes.InvalidArgument || Reason(err) != "INVALID_EVENT" {
			t.Fatalf("refused: %v", err)
		}
		info := ErrorInfo(err)
		if info.GetDomain() != "riverlog.dev" || info.GetMetadata()["index"] != "1" {
			t.Fatalf("error info: %v", info)
		}
	}
	if _, err := badName.Result(); Reason(err) != "INVALID_STREAM_NAME" {
		t.Fatalf("bad name: %v", err)
	}
	if pos, err := after.Result(); err != nil || pos.Sequence != 2 {
		t.Fatalf("after: %v %v", pos, err)
	}
	page, err := c.EventLog.Read(ctx, &pb.ReadRequest{Stream: stream})
	if err != nil || len(page.Events) != 2 {
		t.Fatalf("stored: %v %v", page, err)
	}
}

func TestLiveProducerADeniedStreamFailsAloneAndAnUnknownTokenFailsTheCall(t *testing.T) {
	token := os.Getenv("RIVERLOG_TOKEN")
	c := liveClient(t, "RIVERLOG_AUTH_ADDR", WithToken(token))
	ctx := testContext(t)
	p, err := c.NewProducer(ctx, ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ok := mustSend(ctx, t, p, uniqueStream("orders"), NewEvent("/go", "t"))
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	denied := mustSend(ctx, t, p, "payments:1", NewEvent("/go", "t"))
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ok.Result(); err != nil {
		t.Fatal(err)
	}
	if _, err := denied.Result(); status.Code(err) != codes.PermissionDenied ||
		Reason(err) != "PERMISSION_DENIED" || ErrorInfo(err).GetMetadata()["stream"] != "payments:1" {
		t.Fatalf("denied: %v", err)
	}

	stranger := liveClient(t, "RIVERLOG_AUTH_ADDR", WithToken("wrong-token"))
	p, err = stranger.NewProducer(ctx, ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lost := mustSend(ctx, t, p, "orders:1", NewEvent("/go", "t"))
	if err := p.Flush(ctx); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("flush: %v", err)
	}
	if _, err := lost.Result(); Reason(err) != "UNAUTHENTICATED" {
		t.Fatalf("lost: %v", err)
	}
	if _, err := p.Send(ctx, "orders:1", NewEvent("/go", "t")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("send after the call failed: %v", err)
	}
	if err := p.Close(ctx); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("close: %v", err)
	}
}

func TestLiveProducerFromManyGoroutinesWithinMaxBuffered(t *testing.T) {
	c := liveClient(t, "RIVERLOG_ADDR")
	ctx := testContext(t)
	stream := uniqueStream("go:many")
	p, err := c.NewProducer(ctx, ProducerOptions{MaxBuffered: 50, MaxBatchEvents: 16})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make(chan *Pending, 2000)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				pending, err := p.Send(ctx, stream, NewEvent("/go", "t"))
				if err != nil {
					t.Error(err)
					return
				}
				results <- pending
			}
		}()
	}
	wg.Wait()
	close(results)
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for pending := range results {
		pos, err := pending.Result()
		if err != nil || seen[pos.Sequence] {
			t.Fatalf("%v %v", pos, err)
		}
		seen[pos.Sequence] = true
	}
	if len(seen) != 2000 {
		t.Fatalf("%d events answered", len(seen))
	}
}
