package riverlog

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "riverlog.dev/client/go/riverlogv1"
)

func TestNewEvent(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := NewEvent("/shop", "order.created", WithSubject("o-1"), WithTime(at), WithJSON([]byte(`{"a":1}`)))
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(ev.Id) {
		t.Errorf("id %q is not a UUIDv4", ev.Id)
	}
	if ev.SpecVersion != "1.0" || ev.Source != "/shop" || ev.Type != "order.created" {
		t.Errorf("context attributes: %v", ev)
	}
	if ev.Attributes["subject"].GetCeString() != "o-1" ||
		!ev.Attributes["time"].GetCeTimestamp().AsTime().Equal(at) ||
		ev.Attributes["datacontenttype"].GetCeString() != "application/json" ||
		ev.GetTextData() != `{"a":1}` {
		t.Errorf("attributes/data: %v", ev)
	}
	bin := NewEvent("s", "t", WithID("x"), WithBinary("", []byte{1, 2}))
	if bin.Id != "x" || string(bin.GetBinaryData()) != "\x01\x02" || bin.Attributes != nil {
		t.Errorf("binary event: %v", bin)
	}
	// The generated messages round-trip through the protobuf runtime.
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back pb.CloudEvent
	if err := proto.Unmarshal(b, &back); err != nil || !proto.Equal(&back, ev) {
		t.Errorf("round trip: %v %v", err, &back)
	}
}

func TestReason(t *testing.T) {
	st, err := status.New(codes.NotFound, "no such stream").WithDetails(
		&errdetails.ErrorInfo{Reason: "STREAM_NOT_FOUND", Domain: "riverlog.dev"})
	if err != nil {
		t.Fatal(err)
	}
	if got := Reason(st.Err()); got != "STREAM_NOT_FOUND" {
		t.Errorf("Reason = %q", got)
	}
	if got := Reason(fmt.Errorf("wrapped: %w", st.Err())); got != "STREAM_NOT_FOUND" {
		t.Errorf("Reason of a wrapped error = %q", got)
	}
	if ErrorInfo(status.Error(codes.Internal, "x")) != nil || Reason(fmt.Errorf("plain")) != "" || Reason(nil) != "" {
		t.Error("errors without ErrorInfo must have no reason")
	}
}
