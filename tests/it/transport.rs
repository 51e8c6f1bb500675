//! Transport features: gRPC and HTTP compression (SSE flushed per event),
//! grpc-web over HTTP/1.1, and CORS.

use std::io::Write;

use futures::StreamExt;
use prost::Message;
use riverlog::proto::v1;
use riverlog::proto::v1::event_log_client::EventLogClient;
use tonic::codec::CompressionEncoding;

use crate::common::*;

#[tokio::test]
async fn grpc_accepts_and_sends_gzip_and_zstd() {
    let server = TestServer::start().await;
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut client = EventLogClient::new(server.channel().await)
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let stream = format!("z-{encoding:?}");
        client
            .publish(publish_request(&stream, events("e", 0..50)))
            .await
            .expect("a compressed publish is accepted");
        let response = client
            .read(v1::ReadRequest {
                stream: stream.clone(),
                limit: 100,
                ..Default::default()
            })
            .await
            .expect("read");
        let name = response
            .metadata()
            .get("grpc-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(name.as_deref(), Some(encoding.to_string().as_str()));
        assert_eq!(response.into_inner().events.len(), 50);
    }
}

/// Decompresses what arrived so far of a gzip or zstd stream.
enum Decoder {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Zstd(zstd::stream::write::Decoder<'static, Vec<u8>>),
}

impl Decoder {
    fn feed(&mut self, chunk: &[u8]) -> String {
        let out = match self {
            Self::Gzip(d) => {
                d.write_all(chunk).unwrap();
                d.flush().unwrap();
                std::mem::take(d.get_mut())
            }
            Self::Zstd(d) => {
                d.write_all(chunk).unwrap();
                d.flush().unwrap();
                std::mem::take(d.get_mut())
            }
        };
        String::from_utf8(out).unwrap()
    }
}

#[tokio::test]
async fn http_responses_and_live_sse_are_compressed_when_asked() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    publish(&mut client, "orders", events("e", 0..20)).await;
    let base = format!("http://{}/api/v1", server.http_addr);
    let http = reqwest::Client::new();

    for encoding in ["gzip", "zstd"] {
        let read = http
            .get(format!("{base}/streams/orders/events"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(read.headers()["content-encoding"], encoding);
        let compressed = read.bytes().await.unwrap();
        let mut decoder = match encoding {
            "gzip" => Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            _ => Decoder::Zstd(zstd::stream::write::Decoder::new(Vec::new()).unwrap()),
        };
        let json: serde_json::Value = serde_json::from_str(&decoder.feed(&compressed)).unwrap();
        assert_eq!(json["events"].as_array().unwrap().len(), 20);

        // A live event must come through at once, not sit in the
        // compressor until more data follows: heartbeats are an hour away.
        let sse = http
            .get(format!(
                "{base}/subscribe?stream=live-{encoding}&from=latest&heartbeat=1h"
            ))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(sse.headers()["content-encoding"], encoding);
        let mut body = sse.bytes_stream();
        let mut decoder = match encoding {
            "gzip" => Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            _ => Decoder::Zstd(zstd::stream::write::Decoder::new(Vec::new()).unwrap()),
        };
        let mut text = String::new();
        // The opening comment and caught-up marker, then the live event.
        while !text.contains("caught-up") {
            text += &decoder.feed(&within(body.next()).await.unwrap().unwrap());
        }
        publish(&mut client, &format!("live-{encoding}"), vec![event("now")]).await;
        while !text.contains("\"id\":\"now\"") {
            text += &decoder.feed(&within(body.next()).await.unwrap().unwrap());
        }
    }
}

fn grpc_web_frame(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bytes);
    frame
}

/// Splits a grpc-web response body into its message and trailers.
fn grpc_web_parse(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while body.len() >= 5 {
        let flag = body[0];
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let payload = body[5..5 + len].to_vec();
        body = &body[5 + len..];
        if flag & 0x80 != 0 {
            trailers = String::from_utf8(payload).unwrap();
        } else {
            messages.push(payload);
        }
    }
    (messages, trailers)
}

#[tokio::test]
async fn grpc_web_publish_and_read_over_http1() {
    let server = TestServer::start().await;
    let http = reqwest::Client::builder().http1_only().build().unwrap();
    let call = |method: &str, body: Vec<u8>| {
        http.post(format!(
            "http://{}/riverlog.v1.EventLog/{method}",
            server.addr
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body)
        .send()
    };
    let published = call(
        "Publish",
        grpc_web_frame(&publish_request("web", vec![event("w1")])),
    )
    .await
    .unwrap();
    assert_eq!(published.status().as_u16(), 200);
    assert_eq!(published.version(), reqwest::Version::HTTP_11);
    let (messages, trailers) = grpc_web_parse(&published.bytes().await.unwrap());
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let reply = v1::PublishResponse::decode(messages[0].as_slice()).unwrap();
    assert_eq!(reply.positions[0].sequence, 1);
    // The call is measured with its real status, not guessed from a body
    // the metrics layer cannot read.
    let metrics = server.scrape().await;
    let ok = [
        ("rpc_method", "riverlog.v1.EventLog/Publish"),
        ("rpc_status_code", "OK"),
    ];
    assert_eq!(
        metric(&metrics, "rpc_server_call_duration_seconds_count", &ok),
        Some(1.0),
        "{metrics}"
    );

    let read = call(
        "Read",
        grpc_web_frame(&v1::ReadRequest {
            stream: "web".into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let (messages, _) = grpc_web_parse(&read.bytes().await.unwrap());
    let page = v1::ReadResponse::decode(messages[0].as_slice()).unwrap();
    assert_eq!(event_id(&page.events[0]), "w1");

    // Errors travel as grpc-web trailers with the usual status.
    let missing = call(
        "GetStream",
        grpc_web_frame(&v1::GetStreamRequest {
            stream: "nope".into(),
        }),
    )
    .await
    .unwrap();
    let status = missing
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    let (_, trailers) = grpc_web_parse(&missing.bytes().await.unwrap());
    assert!(
        status.as_deref() == Some("5") || trailers.contains("grpc-status:5"),
        "{status:?} {trailers}"
    );
}

#[tokio::test]
async fn cors_admits_only_the_configured_origins() {
    let server = TestServer::start_with(|c| {
        c.cors_allowed_origins = Some("https://console.example".into());
    })
    .await;
    let http = reqwest::Client::new();
    for url in [
        format!("http://{}/api/v1/streams", server.http_addr),
        format!("http://{}/riverlog.v1.EventLog/Publish", server.addr),
    ] {
        let preflight = |origin: &'static str| {
            http.request(reqwest::Method::OPTIONS, url.as_str())
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,x-grpc-web")
                .send()
        };
        let allowed = preflight("https://console.example").await.unwrap();
        assert_eq!(
            allowed
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("https://console.example"),
            "{url}"
        );
        let other = preflight("https://evil.example").await.unwrap();
        assert!(
            other.headers().get("access-control-allow-origin").is_none(),
            "{url}"
        );
    }
    // By default no origin is allowed.
    let closed = TestServer::start().await;
    let response = http
        .get(format!("http://{}/api/v1/streams", closed.http_addr))
        .header("origin", "https://console.example")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn a_compressed_sse_stream_the_server_ends_is_complete() {
    use std::io::Read;
    let mut server = TestServer::start().await;
    let url = format!(
        "http://{}/api/v1/subscribe?stream=s&from=earliest&heartbeat=1h",
        server.http_addr
    );
    let mut client = server.client().await;
    publish(&mut client, "s", vec![event("a")]).await;
    let response = reqwest::Client::new()
        .get(url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    // Once the event has come through, stop the server: the stream ends.
    let (event_came, event_seen) = tokio::sync::oneshot::channel();
    let body = tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut decoder = Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new()));
        let (mut compressed, mut text) = (Vec::new(), String::new());
        let mut event_came = Some(event_came);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            compressed.extend_from_slice(&chunk);
            text += &decoder.feed(&chunk);
            if let Some(came) = event_came.take_if(|_| text.contains("\"id\":\"a\"")) {
                let _ = came.send(());
            }
        }
        Ok::<_, reqwest::Error>(compressed)
    });
    within(event_seen).await.expect("the event came through");
    server.shutdown().await;
    let compressed = within(body).await.unwrap().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_string(&mut text)
        .expect("a complete gzip stream, trailer included");
    assert!(text.contains("\"id\":\"a\""), "{text}");
}

#[tokio::test]
async fn cors_preflights_may_ask_for_authorization() {
    let server = TestServer::start_with(|c| {
        c.cors_allowed_origins = Some("https://console.example".into());
    })
    .await;
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/api/v1/streams", server.http_addr),
        )
        .header("origin", "https://console.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization,ce-id")
        .send()
        .await
        .unwrap();
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("ce-id"),
        "{allowed}"
    );
}

/// Sends and receives message bytes as they are, to put on the wire what
/// no generated client would.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        buf.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Bytes no riverlog request decodes from: a length-delimited field 1
/// claiming 100 bytes that never come, and a field with wire type 7,
/// which does not exist.
const UNDECODABLE: [&[u8]; 2] = [&[0x0a, 100], &[0x0f, 0x01]];

#[tokio::test]
async fn a_request_that_does_not_decode_is_invalid_argument_malformed_request_on_every_rpc() {
    let server = TestServer::start().await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    for method in [
        "/riverlog.v1.EventLog/Publish",
        "/riverlog.v1.EventLog/Read",
        "/riverlog.v1.ConsumerGroups/Fetch",
        "/riverlog.v1.Checkpoints/CommitCheckpoint",
    ] {
        for body in UNDECODABLE {
            grpc.ready().await.unwrap();
            let path = http::uri::PathAndQuery::from_static(method);
            let err = grpc
                .unary(tonic::Request::new(body.to_vec()), path, RawCodec)
                .await
                .expect_err("refused");
            assert_error(&err, tonic::Code::InvalidArgument, "MALFORMED_REQUEST");
        }
    }
    // Server-streaming calls refuse it before their stream starts.
    for method in [
        "/riverlog.v1.EventLog/Subscribe",
        "/riverlog.v1.ConsumerGroups/Consume",
    ] {
        for body in UNDECODABLE {
            grpc.ready().await.unwrap();
            let path = http::uri::PathAndQuery::from_static(method);
            let err = grpc
                .server_streaming(tonic::Request::new(body.to_vec()), path, RawCodec)
                .await
                .expect_err("refused");
            assert_error(&err, tonic::Code::InvalidArgument, "MALFORMED_REQUEST");
        }
    }
    // The same bytes as a well-formed message of nothing are fine: the
    // refusal is about decoding, not about content.
    grpc.ready().await.unwrap();
    let err = grpc
        .unary(
            tonic::Request::new(Vec::new()),
            http::uri::PathAndQuery::from_static("/riverlog.v1.EventLog/GetStream"),
            RawCodec,
        )
        .await
        .expect_err("an empty stream name");
    assert_error(&err, tonic::Code::InvalidArgument, "INVALID_STREAM_NAME");
}

#[tokio::test]
async fn a_grpc_web_request_that_does_not_decode_is_malformed_request_too() {
    let server = TestServer::start().await;
    let http = reqwest::Client::builder().http1_only().build().unwrap();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(UNDECODABLE[0].len() as u32).to_be_bytes());
    frame.extend_from_slice(UNDECODABLE[0]);
    let response = http
        .post(format!(
            "http://{}/riverlog.v1.EventLog/Publish",
            server.addr
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(frame)
        .send()
        .await
        .unwrap();
    // The status comes in the headers (trailers-only) or in the trailer
    // frame of the body.
    let mut fields = response.headers().clone();
    let (_, trailers) = grpc_web_parse(&response.bytes().await.unwrap());
    for line in trailers.lines() {
        if let Some((name, value)) = line.split_once(':') {
            fields.insert(
                http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                value.trim().parse().unwrap(),
            );
        }
    }
    let status = tonic::Status::from_header_map(&fields).expect("a grpc-status");
    assert_error(&status, tonic::Code::InvalidArgument, "MALFORMED_REQUEST");
}
