package riverlog

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "riverlog.dev/client/go/riverlogv1"
)

// ProducerOptions says how a Producer batches; zero values take the defaults.
type ProducerOptions struct {
	// MaxBatchEvents is the most events in one batch (one request). Default 500.
	MaxBatchEvents int
	// MaxBatchBytes is about the most encoded event bytes in one batch; a
	// single larger event goes alone. Default 1 MiB.
	MaxBatchBytes int
	// Linger is how long the first event of a batch waits for more.
	// Default 5 ms.
	Linger time.Duration
	// MaxBuffered is the most events queued or in flight: Send blocks while
	// this many are unanswered. Default 20000.
	MaxBuffered int
}

// ErrProducerClosed is returned by Send after Close.
var ErrProducerClosed = errors.New("riverlog: the producer is closed")

// ReasonEarlierBatchRefused is the ErrorInfo reason of events failed unsent
// (code Aborted) because an earlier batch of their stream was refused.
const ReasonEarlierBatchRefused = "EARLIER_BATCH_REFUSED"

// Pending is the future of one sent event: Done is closed once the server
// answered its batch (or the call failed), then Result tells where the event
// landed or why it was refused.
type Pending struct {
	done     chan struct{}
	position *pb.PublishedPosition
	err      error
}

// Done is closed when the result is known.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Result returns the event's position, or the error its batch was refused
// with: the same gRPC status (code, message, ErrorInfo) a unary Publish
// returns, so status.Code and Reason work on it. Call it after Done.
func (p *Pending) Result() (*pb.PublishedPosition, error) {
	<-p.done
	return p.position, p.err
}

// Wait waits for the result, or for ctx.
func (p *Pending) Wait(ctx context.Context) (*pb.PublishedPosition, error) {
	select {
	case <-p.done:
		return p.position, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *Pending) settle(position *pb.PublishedPosition, err error) {
	p.position, p.err = position, err
	close(p.done)
}

// batch is events of one stream that go out as one request: one atomic
// publish.
type batch struct {
	stream   string
	events   []*pb.CloudEvent
	pending  []*Pending
	bytes    int
	deadline time.Time
	// done is set (under Producer.mu) once every event is settled: what
	// Flush waits for.
	done bool
}

func (b *batch) fail(err error) {
	for _, p := range b.pending {
		p.settle(nil, err)
	}
}

// earlierRefused is why events of stream were not sent after a batch of it
// was refused with refusal.
func earlierRefused(stream string, refusal error) error {
	st := status.New(codes.Aborted, "riverlog: not sent: an earlier batch of stream "+
		strconv.Quote(stream)+" was refused ("+Reason(refusal)+"); send these events again after it")
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   ReasonEarlierBatchRefused,
		Metadata: map[string]string{"stream": stream, "refused_reason": Reason(refusal)},
	})
	if err != nil {
		return st.Err()
	}
	return withInfo.Err()
}

// Producer publishes events in batches over one PublishStream call.
//
// Send queues one event for a stream and returns its Pending result. Events
// of one stream are batched in the order sent; a batch goes out when full,
// when its first event has waited Linger, or on Flush. Many batches are in
// flight on the one call; the server answers them in order.
//
// A batch is one atomic publish: a refused batch (an invalid event, a stream
// the token may not publish to, the rate limit) fails every event of it
// while batches of other streams still commit. Batches of the same stream
// not yet sent when the refusal arrives fail unsent, with code Aborted and
// reason ReasonEarlierBatchRefused, so nothing queued after the refused
// batch overtakes it; batches of that stream already sent are answered as
// the server decides and may commit before a retry of the refused one. Send
// the refused and the ReasonEarlierBatchRefused events again, in order, to
// keep the stream in order. When the call itself fails (server
// unreachable or shutting down, unknown token) every unanswered event fails
// with that error and the producer is done: events are idempotent by id, so
// sending them again with a new producer is safe. The call is never retried
// behind the caller's back.
//
// A Producer is safe for concurrent use. Close it when done.
type Producer struct {
	opts   ProducerOptions
	call   pb.EventLog_PublishStreamClient
	cancel context.CancelFunc

	mu sync.Mutex
	// open are the batches being filled, by stream; order keeps the order
	// they were opened in.
	open  map[string]*batch
	order []string
	// ready are full batches waiting to be sent, inFlight those sent and
	// not answered, both in order.
	ready    []*batch
	inFlight []*batch
	buffered int
	closing  bool
	err      error
	// wake nudges the sender; changed is closed (and replaced) whenever
	// answers arrive or the call ends.
	wake     chan struct{}
	changed  chan struct{}
	finished chan struct{}
}

// NewProducer opens a PublishStream call for a Producer. The call lives
// until Close or until ctx ends.
func (c *Client) NewProducer(ctx context.Context, opts ProducerOptions) (*Producer, error) {
	ctx, cancel := context.WithCancel(ctx)
	call, err := c.EventLog.PublishStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return startProducer(call, cancel, opts), nil
}

// startProducer runs a Producer over an open call; cancel ends the call.
func startProducer(call pb.EventLog_PublishStreamClient, cancel context.CancelFunc, opts ProducerOptions) *Producer {
	if opts.MaxBatchEvents <= 0 {
		opts.MaxBatchEvents = 500
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 1 << 20
	}
	if opts.Linger <= 0 {
		opts.Linger = 5 * time.Millisecond
	}
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = 20000
	}
	p := &Producer{
		opts:     opts,
		call:     call,
		cancel:   cancel,
		open:     map[string]*batch{},
		wake:     make(chan struct{}, 1),
		changed:  make(chan struct{}),
		finished: make(chan struct{}),
	}
	sent := make(chan struct{})
	go p.send(sent)
	go p.receive(sent)
	return p
}

// Send queues event for stream. It blocks while MaxBuffered events are
// unanswered (or until ctx ends), and fails once the producer is closed or
// its call failed.
func (p *Producer) Send(ctx context.Context, stream string, event *pb.CloudEvent) (*Pending, error) {
	size := proto.Size(event)
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.buffered >= p.opts.MaxBuffered && p.err == nil && !p.closing {
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			p.mu.Lock()
			return nil, ctx.Err()
		}
		p.mu.Lock()
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.closing {
		return nil, ErrProducerClosed
	}
	b := p.open[stream]
	if b != nil && (len(b.events) >= p.opts.MaxBatchEvents || b.bytes+size > p.opts.MaxBatchBytes) {
		p.seal(stream)
		b = nil
	}
	if b == nil {
		b = &batch{stream: stream, deadline: time.Now().Add(p.opts.Linger)}
		p.open[stream] = b
		p.order = append(p.order, stream)
	}
	pending := &Pending{done: make(chan struct{})}
	b.events = append(b.events, event)
	b.pending = append(b.pending, pending)
	b.bytes += size
	p.buffered++
	if len(b.events) >= p.opts.MaxBatchEvents {
		p.seal(stream)
	}
	p.nudge()
	return pending, nil
}

// Flush sends every event queued so far now and waits until all of them are
// answered (or ctx ends); events sent meanwhile are not waited for. It
// returns the call's error if the call failed; refusals of single batches
// are in their events' Pending results.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	waiting := append(append([]*batch(nil), p.inFlight...), p.ready...)
	for _, stream := range append([]string(nil), p.order...) {
		waiting = append(waiting, p.open[stream])
		p.seal(stream)
	}
	p.nudge()
	for p.err == nil && !allDone(waiting) {
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
	}
	err := p.err
	p.mu.Unlock()
	return err
}

func allDone(batches []*batch) bool {
	for _, b := range batches {
		if !b.done {
			return false
		}
	}
	return true
}

// Close flushes, ends the call and waits for it to end (or for ctx, which
// then cancels the call). It returns the call's error, if any. Calling it
// again returns the same.
func (p *Producer) Close(ctx context.Context) error {
	flushed := p.Flush(ctx)
	p.mu.Lock()
	p.closing = true
	p.nudge()
	p.mu.Unlock()
	select {
	case <-p.finished:
	case <-ctx.Done():
		p.cancel()
		<-p.finished
	}
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	return flushed
}

// unsent takes the batches of stream not sent yet out of the queues (p.mu
// held).
func (p *Producer) unsent(stream string) []*batch {
	var taken []*batch
	kept := p.ready[:0]
	for _, b := range p.ready {
		if b.stream == stream {
			taken = append(taken, b)
		} else {
			kept = append(kept, b)
		}
	}
	p.ready = kept
	if b := p.open[stream]; b != nil {
		p.seal(stream)
		p.ready = p.ready[:len(p.ready)-1]
		taken = append(taken, b)
	}
	for _, b := range taken {
		p.buffered -= len(b.pending)
	}
	return taken
}

// seal moves the open batch of stream to the ready queue (p.mu held).
func (p *Producer) seal(stream string) {
	p.ready = append(p.ready, p.open[stream])
	delete(p.open, stream)
	for i, s := range p.order {
		if s == stream {
			p.order = append(p.order[:i], p.order[i+1:]...)
			break
		}
	}
}

func (p *Producer) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Producer) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// next returns the next batch to send, waiting for one; nil ends the call.
func (p *Producer) next() *batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		select {
		case <-p.finished:
			return nil
		default:
		}
		if p.err != nil {
			return nil
		}
		now := time.Now()
		if len(p.ready) == 0 {
			// Open batches leave in the order they were opened.
			for _, stream := range append([]string(nil), p.order...) {
				if p.closing || !p.open[stream].deadline.After(now) {
					p.seal(stream)
				}
			}
		}
		if len(p.ready) > 0 {
			b := p.ready[0]
			p.ready = p.ready[1:]
			p.inFlight = append(p.inFlight, b)
			return b
		}
		if p.closing {
			return nil
		}
		var timer *time.Timer
		var expired <-chan time.Time
		if len(p.order) > 0 {
			timer = time.NewTimer(p.open[p.order[0]].deadline.Sub(now))
			expired = timer.C
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-expired:
		case <-p.finished:
		}
		if timer != nil {
			timer.Stop()
		}
		p.mu.Lock()
	}
}

// send writes batches to the call until there are none left to send.
func (p *Producer) send(sent chan<- struct{}) {
	defer close(sent)
	for {
		b := p.next()
		if b == nil {
			_ = p.call.CloseSend()
			return
		}
		if err := p.call.Send(&pb.PublishRequest{Stream: b.stream, Events: b.events}); err != nil {
			// The call broke: Recv reports why.
			return
		}
	}
}

// receive settles each batch with its answer, in order, until the call ends.
func (p *Producer) receive(sent <-chan struct{}) {
	var failure error
	for {
		answer, err := p.call.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			failure = err
			break
		}
		p.mu.Lock()
		if len(p.inFlight) == 0 {
			p.mu.Unlock()
			failure = status.Error(codes.Internal, "riverlog: an answer PublishStream did not owe")
			break
		}
		b := p.inFlight[0]
		p.inFlight = p.inFlight[1:]
		p.buffered -= len(b.pending)
		var refusal error
		var unsent []*batch
		if e := answer.GetError(); e != nil {
			refusal = requestError(e)
			unsent = p.unsent(b.stream)
		}
		p.broadcast()
		p.mu.Unlock()
		if refusal != nil {
			b.fail(refusal)
			for _, u := range unsent {
				u.fail(earlierRefused(b.stream, refusal))
			}
		} else {
			for i, pending := range b.pending {
				if i < len(answer.Positions) {
					pending.settle(answer.Positions[i], nil)
				} else {
					pending.settle(nil, status.Error(codes.Internal, "riverlog: no position for this event"))
				}
			}
		}
		p.mu.Lock()
		b.done = true
		for _, u := range unsent {
			u.done = true
		}
		p.broadcast()
		p.mu.Unlock()
	}
	p.mu.Lock()
	if failure == nil && (len(p.inFlight) > 0 || len(p.ready) > 0 || len(p.open) > 0) {
		failure = status.Error(codes.Unknown, "riverlog: PublishStream ended with events unanswered")
	}
	if failure != nil {
		p.err = failure
		for _, b := range p.inFlight {
			b.fail(failure)
			b.done = true
		}
		for _, b := range p.ready {
			b.fail(failure)
			b.done = true
		}
		for _, b := range p.open {
			b.fail(failure)
			b.done = true
		}
		p.inFlight, p.ready, p.open, p.order = nil, nil, map[string]*batch{}, nil
		p.buffered = 0
	}
	p.broadcast()
	close(p.finished)
	p.mu.Unlock()
	p.cancel()
	<-sent
}

// requestError is the refusal of one request as the error a unary Publish
// returns: its code, message and ErrorInfo (and RetryInfo when set), so
// status.Code, Reason and ErrorInfo read it the same.
func requestError(e *pb.RequestError) error {
	st := status.New(codes.Code(e.GetCode()), e.GetMessage())
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: e.GetReason(), Domain: e.GetDomain(), Metadata: e.GetMetadata(),
	})
	if err != nil {
		return st.Err()
	}
	if d := e.GetRetryDelay(); d != nil {
		if withRetry, err := withInfo.WithDetails(&errdetails.RetryInfo{RetryDelay: d}); err == nil {
			return withRetry.Err()
		}
	}
	return withInfo.Err()
}
