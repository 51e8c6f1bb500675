// The generated protobuf-es messages and service descriptors (src/gen, made by ./generate.sh).
export * from "./gen/riverlog/v1/checkpoints_pb.js";
export * from "./gen/riverlog/v1/cloudevent_pb.js";
export * from "./gen/riverlog/v1/consumer_groups_pb.js";
export * from "./gen/riverlog/v1/event_log_pb.js";
export * from "./gen/riverlog/v1/types_pb.js";
export * from "./gen/google/rpc/error_details_pb.js";
