export {
  Client,
  Consumer,
  Subscription,
  type ClientOptions,
  type ConsumeOptions,
  type CreateGroupOptions,
  type Delivery,
  type FetchOptions,
  type Filter,
  type PublishOptions,
  type Published,
  type ReadOptions,
  type ReadResult,
  type ReconnectOptions,
  type Start,
  type StreamStateCondition,
  type SubscribeOptions,
} from "./client.js";
export { Code, ERROR_DOMAIN, RiverlogError } from "./errors.js";
export { EARLIER_BATCH_REFUSED, type Pending, Producer, type ProducerOptions } from "./producer.js";
export type { AttributeInput, AttributeValue, Event, EventInput } from "./events.js";
/** The generated protobuf-es messages and service descriptors. */
export * as pb from "./pb.js";
