package riverlog

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "riverlog.dev/client/go/riverlogv1"
)

// fakeCall is a PublishStream call the test plays the server of: it takes
// each request the producer sends and gives the answers the test decides.
type fakeCall struct {
	grpc.ClientStream
	sent    chan *pb.PublishRequest
	answers chan *pb.PublishResponse
}

func newFakeCall() *fakeCall {
	return &fakeCall{sent: make(chan *pb.PublishRequest), answers: make(chan *pb.PublishResponse)}
}

func (f *fakeCall) Send(r *pb.PublishRequest) error { f.sent <- r; return nil }

func (f *fakeCall) CloseSend() error { close(f.sent); return nil }

func (f *fakeCall) Recv() (*pb.PublishResponse, error) {
	a, ok := <-f.answers
	if !ok {
		return nil, io.EOF
	}
	return a, nil
}

// request takes the next request the producer sends.
func (f *fakeCall) request(t *testing.T) *pb.PublishRequest {
	t.Helper()
	select {
	case r := <-f.sent:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request sent")
		return nil
	}
}

func positions(from uint64, n int) *pb.PublishResponse {
	answer := &pb.PublishResponse{}
	for i := 0; i < n; i++ {
		answer.Positions = append(answer.Positions, &pb.PublishedPosition{Sequence: from + uint64(i)})
	}
	return answer
}

func settled(p *Pending) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

func unitProducer(t *testing.T, call *fakeCall, opts ProducerOptions) (*Producer, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return startProducer(call, func() {}, opts), ctx
}

func TestFlushWaitsOnlyForTheEventsSentBeforeIt(t *testing.T) {
	call := newFakeCall()
	p, ctx := unitProducer(t, call, ProducerOptions{Linger: time.Hour})
	early := mustSend(ctx, t, p, "s", NewEvent("/go", "t", WithID("early")))
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	if r := call.request(t); r.Events[0].Id != "early" {
		t.Fatalf("flush sent %v", r)
	}
	// Queued after the flush began: lingers, and the flush does not wait.
	late := mustSend(ctx, t, p, "s", NewEvent("/go", "t", WithID("late")))
	call.answers <- positions(1, 1)
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("flush waited for an event sent after it began")
	}
	if pos, err := early.Result(); err != nil || pos.Sequence != 1 {
		t.Fatalf("early: %v %v", pos, err)
	}
	if settled(late) {
		t.Fatal("flush sent the later event")
	}
}

func TestARefusalFailsTheUnsentBatchesOfItsStreamOnly(t *testing.T) {
	call := newFakeCall()
	p, ctx := unitProducer(t, call, ProducerOptions{Linger: time.Hour, MaxBatchEvents: 2})
	other := mustSend(ctx, t, p, "other", NewEvent("/go", "t"))
	refused := []*Pending{
		mustSend(ctx, t, p, "s", NewEvent("/go", "t", WithID("a"))),
		mustSend(ctx, t, p, "s", NewEvent("/go", "t", WithID("bad"))),
	}
	call.request(t) // the full batch
	unsent := mustSend(ctx, t, p, "s", NewEvent("/go", "t", WithID("b")))
	call.answers <- &pb.PublishResponse{Error: &pb.RequestError{
		Code: int32(codes.InvalidArgument), Message: "bad event", Reason: "INVALID_EVENT", Domain: "riverlog.dev",
	}}
	for _, r := range refused {
		if _, err := r.Wait(ctx); Reason(err) != "INVALID_EVENT" {
			t.Fatalf("refused: %v", err)
		}
	}
	_, err := unsent.Wait(ctx)
	if status.Code(err) != codes.Aborted || Reason(err) != ReasonEarlierBatchRefused ||
		ErrorInfo(err).GetMetadata()["stream"] != "s" || ErrorInfo(err).GetMetadata()["refused_reason"] != "INVALID_EVENT" {
		t.Fatalf("unsent: %v", err)
	}
	if settled(other) {
		t.Fatal("a batch of another stream was failed")
	}
	// Sent again after the refusal: goes out as usual.
	retry := mustSend(ctx, t, p, "s", NewEvent("/go", "t", WithID("b")))
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	for i := 0; i < 2; i++ {
		call.request(t)
		call.answers <- positions(1, 1)
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if _, err := retry.Result(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Result(); err != nil {
		t.Fatal(err)
	}
}
