import { create } from "@bufbuild/protobuf";
import type { Any, Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import {
  type CloudEvent,
  type CloudEvent_CloudEventAttributeValue,
  CloudEventSchema,
  CloudEvent_CloudEventAttributeValueSchema,
} from "./gen/riverlog/v1/cloudevent_pb.js";
import type { RecordedEvent } from "./gen/riverlog/v1/types_pb.js";

/**
 * An attribute value to publish. Strings become `ce_string`, integers
 * `ce_integer`, booleans `ce_boolean`, bytes `ce_bytes`, dates
 * `ce_timestamp`; `{ uri }` and `{ uriRef }` pick the URI types.
 */
export type AttributeInput =
  | string
  | number
  | boolean
  | Uint8Array
  | Date
  | { uri: string }
  | { uriRef: string };

/** An attribute value as read back (URIs come back as strings). */
export type AttributeValue = string | number | boolean | Uint8Array | Date;

/** A CloudEvent to publish. Only `type` is required. */
export interface EventInput {
  /** Event id, unique per source; publishing is idempotent by id within a stream. Default: a random UUID. */
  id?: string;
  /** URI-reference of the event's context. Default: the client's `source` option. */
  source?: string;
  /** Event type, e.g. `com.example.order.created`. */
  type: string;
  /** `subject` attribute. */
  subject?: string;
  /** `time` attribute. */
  time?: Date;
  /** `datacontenttype`; defaults to `application/json` when `data` is a JSON value. */
  datacontenttype?: string;
  /** `dataschema` attribute (a URI). */
  dataschema?: string;
  /**
   * The payload: a string is sent as text, a Uint8Array as binary, a
   * protobuf `Any` (marked with `$typeName`) as a proto payload, and any
   * other value as JSON text.
   */
  data?: unknown;
  /** Further (extension) attributes: lowercase a-z0-9 names. */
  attributes?: Record<string, AttributeInput>;
}

/** An event as the log recorded it. */
export interface Event {
  /** Stream it belongs to. */
  readonly stream: string;
  /** Sequence within the stream (from 1). */
  readonly sequence: bigint;
  /** Position in the whole log; resume a subscription at `position + 1n`. */
  readonly position: bigint;
  /** When the log committed it. */
  readonly recordedAt: Date;
  readonly id: string;
  readonly source: string;
  readonly specVersion: string;
  readonly type: string;
  readonly subject: string | undefined;
  readonly time: Date | undefined;
  readonly datacontenttype: string | undefined;
  readonly dataschema: string | undefined;
  /** Every optional and extension attribute, `subject`, `time`, ... included. */
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** Text payload, binary payload, protobuf `Any` payload, or undefined. */
  readonly data: string | Uint8Array | Any | undefined;
  /** The payload as text (binary payloads are decoded as UTF-8). */
  text(): string;
  /** The payload parsed as JSON. */
  json<T = unknown>(): T;
  /** The generated protobuf message, for anything not covered above. */
  readonly raw: RecordedEvent;
}

const ATTR_NAME = /^[a-z0-9]{1,64}$/;

function attributeValue(value: AttributeInput): CloudEvent_CloudEventAttributeValue {
  let attr: CloudEvent_CloudEventAttributeValue["attr"];
  if (typeof value === "string") {
    attr = { case: "ceString", value };
  } else if (typeof value === "boolean") {
    attr = { case: "ceBoolean", value };
  } else if (typeof value === "number") {
    if (!Number.isInteger(value) || value < -2147483648 || value > 2147483647) {
      throw new TypeError(`attribute value ${value} is not a 32-bit integer`);
    }
    attr = { case: "ceInteger", value };
  } else if (value instanceof Uint8Array) {
    attr = { case: "ceBytes", value };
  } else if (value instanceof Date) {
    attr = { case: "ceTimestamp", value: timestampFromDate(value) };
  } else if ("uri" in value) {
    attr = { case: "ceUri", value: value.uri };
  } else {
    attr = { case: "ceUriRef", value: value.uriRef };
  }
  return create(CloudEvent_CloudEventAttributeValueSchema, { attr });
}

function isAny(value: unknown): value is Any {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { $typeName?: unknown }).$typeName === "google.protobuf.Any"
  );
}

/** Builds the protobuf CloudEvent for an EventInput. */
export function toCloudEvent(input: EventInput, defaultSource: string): CloudEvent {
  const attributes: Record<string, CloudEvent_CloudEventAttributeValue> = {};
  for (const [name, value] of Object.entries(input.attributes ?? {})) {
    if (!ATTR_NAME.test(name)) {
      throw new TypeError(`invalid CloudEvent attribute name ${JSON.stringify(name)}`);
    }
    attributes[name] = attributeValue(value);
  }
  if (input.subject !== undefined) {
    attributes["subject"] = attributeValue(input.subject);
  }
  if (input.time !== undefined) {
    attributes["time"] = attributeValue(input.time);
  }
  if (input.dataschema !== undefined) {
    attributes["dataschema"] = attributeValue({ uri: input.dataschema });
  }
  let datacontenttype = input.datacontenttype;
  let data: CloudEvent["data"] = { case: undefined };
  const payload = input.data;
  if (payload === undefined) {
    // no data
  } else if (typeof payload === "string") {
    data = { case: "textData", value: payload };
  } else if (payload instanceof Uint8Array) {
    data = { case: "binaryData", value: payload };
  } else if (isAny(payload)) {
    data = { case: "protoData", value: payload };
  } else {
    const json = JSON.stringify(payload);
    if (json === undefined) {
      throw new TypeError("event data is not JSON-serializable");
    }
    data = { case: "textData", value: json };
    datacontenttype ??= "application/json";
  }
  if (datacontenttype !== undefined) {
    attributes["datacontenttype"] = attributeValue(datacontenttype);
  }
  return create(CloudEventSchema, {
    id: input.id ?? randomUUID(),
    source: input.source ?? defaultSource,
    specVersion: "1.0",
    type: input.type,
    attributes,
    data,
  });
}

function decodeAttribute(value: CloudEvent_CloudEventAttributeValue): AttributeValue | undefined {
  const attr = value.attr;
  switch (attr.case) {
    case "ceTimestamp":
      return timestampDate(attr.value);
    case undefined:
      return undefined;
    default:
      return attr.value;
  }
}

const utf8 = new TextDecoder();

class RecordedEventView implements Event {
  readonly stream: string;
  readonly sequence: bigint;
  readonly position: bigint;
  readonly recordedAt: Date;
  readonly id: string;
  readonly source: string;
  readonly specVersion: string;
  readonly type: string;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly data: string | Uint8Array | Any | undefined;

  constructor(readonly raw: RecordedEvent) {
    const ce = raw.event;
    this.stream = raw.stream;
    this.sequence = raw.sequence;
    this.position = raw.position;
    this.recordedAt = raw.recordedAt ? timestampDate(raw.recordedAt) : new Date(0);
    this.id = ce?.id ?? "";
    this.source = ce?.source ?? "";
    this.specVersion = ce?.specVersion ?? "";
    this.type = ce?.type ?? "";
    const attributes: Record<string, AttributeValue> = {};
    for (const [name, value] of Object.entries(ce?.attributes ?? {})) {
      const decoded = decodeAttribute(value);
      if (decoded !== undefined) {
        attributes[name] = decoded;
      }
    }
    this.attributes = attributes;
    this.data = ce?.data.value;
  }

  private stringAttribute(name: string): string | undefined {
    const value = this.attributes[name];
    return typeof value === "string" ? value : undefined;
  }

  get subject(): string | undefined {
    return this.stringAttribute("subject");
  }

  get datacontenttype(): string | undefined {
    return this.stringAttribute("datacontenttype");
  }

  get dataschema(): string | undefined {
    return this.stringAttribute("dataschema");
  }

  get time(): Date | undefined {
    const value = this.attributes["time"];
    return value instanceof Date ? value : undefined;
  }

  text(): string {
    const data = this.data;
    if (data === undefined) {
      return "";
    }
    if (typeof data === "string") {
      return data;
    }
    if (data instanceof Uint8Array) {
      return utf8.decode(data);
    }
    throw new TypeError("event data is a protobuf message, not text");
  }

  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }
}

/** Wraps a generated RecordedEvent in the typed Event view. */
export function toEvent(raw: RecordedEvent): Event {
  return new RecordedEventView(raw);
}

/** Timestamp helper used by the client. */
export function optionalDate(ts: Timestamp | undefined): Date | undefined {
  return ts ? timestampDate(ts) : undefined;
}
