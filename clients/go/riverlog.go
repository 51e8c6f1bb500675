// Package riverlog is a thin Go client for the riverlog event log.
//
// The generated gRPC stubs live in riverlog.dev/client/go/riverlogv1; this
// package only adds Dial (with an optional bearer token), a CloudEvent
// builder, Publish, a batching Producer over PublishStream, callback loops
// for Subscribe and Consume, and access to the google.rpc.ErrorInfo reason
// that riverlog errors carry.
package riverlog

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "riverlog.dev/client/go/riverlogv1"
)

// Client holds one connection and the three service stubs on it.
type Client struct {
	Conn        *grpc.ClientConn
	EventLog    pb.EventLogClient
	Groups      pb.ConsumerGroupsClient
	Checkpoints pb.CheckpointsClient
}

type options struct {
	token string
	tls   *tls.Config
	dial  []grpc.DialOption
}

// Option configures Dial.
type Option func(*options)

// WithToken sends `authorization: Bearer <token>` on every call. Over a
// plaintext connection the token travels in clear; use WithTLS outside
// localhost.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS connects over TLS with this configuration (default: plaintext).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithDialOptions appends raw grpc.DialOptions.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// Dial connects to a riverlog server such as "127.0.0.1:50051". Like
// grpc.DialContext it does not wait for the connection: the first call does.
func Dial(ctx context.Context, target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dial := []grpc.DialOption{grpc.WithInsecure()}
	if o.tls != nil {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(o.tls))}
	}
	if o.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer(o.token)))
	}
	conn, err := grpc.DialContext(ctx, target, append(dial, o.dial...)...)
	if err != nil {
		return nil, err
	}
	return &Client{
		Conn:        conn,
		EventLog:    pb.NewEventLogClient(conn),
		Groups:      pb.NewConsumerGroupsClient(conn),
		Checkpoints: pb.NewCheckpointsClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so the token also works with the
// plaintext servers of local development.
func (bearer) RequireTransportSecurity() bool { return false }

// EventOption sets an optional part of a CloudEvent built by NewEvent.
type EventOption func(*pb.CloudEvent)

// NewEvent builds a CloudEvent with spec_version "1.0" and a random UUID
// (version 4) as id unless WithID is given.
func NewEvent(source, eventType string, opts ...EventOption) *pb.CloudEvent {
	ev := &pb.CloudEvent{Id: newID(), Source: source, SpecVersion: "1.0", Type: eventType}
	for _, opt := range opts {
		opt(ev)
	}
	return ev
}

// WithID sets the event id (riverlog deduplicates publishes by id per stream).
func WithID(id string) EventOption { return func(e *pb.CloudEvent) { e.Id = id } }

// WithSubject sets the `subject` attribute.
func WithSubject(subject string) EventOption {
	return WithAttribute("subject", &pb.CloudEvent_CloudEventAttributeValue{
		Attr: &pb.CloudEvent_CloudEventAttributeValue_CeString{CeString: subject}})
}

// WithTime sets the `time` attribute.
func WithTime(t time.Time) EventOption {
	return WithAttribute("time", &pb.CloudEvent_CloudEventAttributeValue{
		Attr: &pb.CloudEvent_CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(t)}})
}

// WithJSON sets already encoded JSON as text data, datacontenttype
// application/json.
func WithJSON(data []byte) EventOption { return WithText("application/json", string(data)) }

// WithText sets text data and its datacontenttype.
func WithText(contentType, data string) EventOption {
	return func(e *pb.CloudEvent) {
		setContentType(e, contentType)
		e.Data = &pb.CloudEvent_TextData{TextData: data}
	}
}

// WithBinary sets binary data and its datacontenttype.
func WithBinary(contentType string, data []byte) EventOption {
	return func(e *pb.CloudEvent) {
		setContentType(e, contentType)
		e.Data = &pb.CloudEvent_BinaryData{BinaryData: data}
	}
}

// WithAttribute sets an optional or extension attribute.
func WithAttribute(name string, value *pb.CloudEvent_CloudEventAttributeValue) EventOption {
	return func(e *pb.CloudEvent) {
		if e.Attributes == nil {
			e.Attributes = map[string]*pb.CloudEvent_CloudEventAttributeValue{}
		}
		e.Attributes[name] = value
	}
}

func setContentType(e *pb.CloudEvent, ct string) {
	if ct != "" {
		WithAttribute("datacontenttype", &pb.CloudEvent_CloudEventAttributeValue{
			Attr: &pb.CloudEvent_CloudEventAttributeValue_CeString{CeString: ct}})(e)
	}
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Publish appends events to stream atomically and returns where each landed
// (in request order; `Duplicate` marks ids the stream already held).
func (c *Client) Publish(ctx context.Context, stream string, events ...*pb.CloudEvent) ([]*pb.PublishedPosition, error) {
	resp, err := c.EventLog.Publish(ctx, &pb.PublishRequest{Stream: stream, Events: events})
	if err != nil {
		return nil, err
	}
	return resp.Positions, nil
}

// Stop, returned by a Subscribe or Consume handler, ends the loop without
// error.
var Stop = errors.New("riverlog: stop")

// Subscribe opens req and calls handle for every message (event, heartbeat,
// caught_up) until handle returns an error, the stream fails or ctx ends.
// It returns nil when handle returned Stop, else the error that ended it.
func (c *Client) Subscribe(ctx context.Context, req *pb.SubscribeRequest, handle func(*pb.SubscribeResponse) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.EventLog.Subscribe(ctx, req)
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if err := handle(msg); err != nil {
			if errors.Is(err, Stop) {
				return nil
			}
			return err
		}
	}
}

// Consume opens req and calls handle for every delivery (heartbeats are
// skipped). When handle returns nil or Stop the delivery is acked; any other
// error nacks it (as req.Consumer, for immediate redelivery) and ends the loop
// with that error. Stop ends the loop with nil.
func (c *Client) Consume(ctx context.Context, req *pb.ConsumeRequest, handle func(*pb.Delivery) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Groups.Consume(ctx, req)
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		d := msg.GetDelivery()
		if d == nil {
			continue
		}
		seq := []uint64{d.GetEvent().GetSequence()}
		herr := handle(d)
		if herr != nil && !errors.Is(herr, Stop) {
			if _, err := c.Groups.Nack(ctx, &pb.NackRequest{Stream: req.Stream, Group: req.Group, Consumer: req.Consumer, Sequences: seq}); err != nil {
				return fmt.Errorf("%w (and the nack failed: %v)", herr, err)
			}
			return herr
		}
		if _, err := c.Groups.Ack(ctx, &pb.AckRequest{Stream: req.Stream, Group: req.Group, Sequences: seq}); err != nil {
			return err
		}
		if herr != nil {
			return nil
		}
	}
}

// ErrorInfo returns the google.rpc.ErrorInfo detail of a gRPC error, or nil.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return nil
	}
	for _, d := range se.GRPCStatus().Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// Reason returns the ErrorInfo reason of a riverlog error, such as
// "STREAM_NOT_FOUND", or "" when there is none.
func Reason(err error) string { return ErrorInfo(err).GetReason() }
