// Quick start: publish, read, subscribe, consume, and an error reason.
// test.sh runs it against a real server; it exits 1 on any unexpected result.
//
//	go run ./examples/quickstart -addr 127.0.0.1:50051 [-token TOKEN]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	riverlog "riverlog.dev/client/go"
	pb "riverlog.dev/client/go/riverlogv1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "riverlog gRPC address")
	token := flag.String("token", "", "bearer token (servers with [[auth.tokens]])")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Connect.
	var opts []riverlog.Option
	if *token != "" {
		opts = append(opts, riverlog.WithToken(*token))
	}
	c, err := riverlog.Dial(ctx, *addr, opts...)
	check(err)
	defer c.Close()
	stream := fmt.Sprintf("orders:%d", time.Now().UnixNano()) // fresh per run

	// Publish two CloudEvents (created on first publish), then read them back.
	first := riverlog.NewEvent("/shop", "order.created", riverlog.WithID("order-1"),
		riverlog.WithSubject("order-1"), riverlog.WithJSON([]byte(`{"total":42}`)))
	second := riverlog.NewEvent("/shop", "order.paid", riverlog.WithText("text/plain", "paid"))
	pos, err := c.Publish(ctx, stream, first, second)
	check(err)
	expect(len(pos) == 2 && pos[0].Sequence == 1 && pos[1].Sequence == 2, "positions %v", pos)
	again, err := c.Publish(ctx, stream, first) // same id: not appended twice
	check(err)
	expect(again[0].Duplicate && again[0].Sequence == 1, "duplicate %v", again)

	page, err := c.EventLog.Read(ctx, &pb.ReadRequest{Stream: stream})
	check(err)
	expect(len(page.Events) == 2 && page.EndOfStream, "read %v", page)
	got := page.Events[0].Event
	expect(got.Id == "order-1" && got.GetTextData() == `{"total":42}` &&
		got.Attributes["subject"].GetCeString() == "order-1", "read back %v", got)
	fmt.Printf("published and read %d events on %s\n", len(page.Events), stream)

	// Subscribe: history, then caught_up, then a live event.
	var seen []uint64
	err = c.Subscribe(ctx, &pb.SubscribeRequest{Streams: []string{stream}},
		func(m *pb.SubscribeResponse) error {
			switch {
			case m.GetEvent() != nil:
				seen = append(seen, m.GetEvent().Sequence)
				if len(seen) == 3 {
					return riverlog.Stop
				}
			case m.GetCaughtUp() != nil:
				expect(len(seen) == 2, "caught up after %v", seen)
				_, err := c.Publish(ctx, stream, riverlog.NewEvent("/shop", "order.shipped"))
				return err
			}
			return nil
		})
	check(err)
	expect(fmt.Sprint(seen) == "[1 2 3]", "subscribed %v", seen)
	fmt.Println("subscription: 2 historical events, caught_up, 1 live event")

	// Errors carry google.rpc.ErrorInfo; its reason is the stable code.
	_, err = c.EventLog.GetStream(ctx, &pb.GetStreamRequest{Stream: stream + ":missing"})
	expect(status.Code(err) == codes.NotFound && riverlog.Reason(err) == "STREAM_NOT_FOUND",
		"GetStream of a missing stream: %v", err)
	fmt.Println("missing stream:", riverlog.Reason(err))

	// Consumer group: each delivery is acked when the handler returns nil.
	_, err = c.Groups.CreateGroup(ctx, &pb.CreateGroupRequest{Stream: stream, Group: "billing"})
	check(err)
	n := 0
	err = c.Consume(ctx, &pb.ConsumeRequest{Stream: stream, Group: "billing", Consumer: "worker-1"},
		func(d *pb.Delivery) error {
			n++
			expect(d.Event.Sequence == uint64(n) && d.DeliveryCount == 1, "delivery %v", d)
			if n == 3 {
				return riverlog.Stop // acked too
			}
			return nil
		})
	check(err)
	pending, err := c.Groups.ListPending(ctx, &pb.ListPendingRequest{Stream: stream, Group: "billing"})
	check(err)
	expect(pending.Summary.GetCount() == 0, "pending after acks: %v", pending.Summary)
	fmt.Printf("consumed and acked %d deliveries, 0 pending\n", n)
	fmt.Println("OK")
}

func check(err error) {
	if err != nil {
		log.Fatalf("unexpected error: %v (reason %q)", err, riverlog.Reason(err))
	}
}

func expect(ok bool, format string, args ...interface{}) {
	if !ok {
		log.Fatalf("unexpected: "+format, args...)
	}
}
