// SnowplowRawEvent: the legacy raw event of the early Scala stream collector.

namespace py logferry.snowplow.snowplow_raw_event

enum PayloadProtocol {
  Http = 1
}

enum PayloadFormat {
  HttpGet = 1
  HttpPostUrlencodedForm = 10
  HttpPostMultipartForm = 11
}

struct TrackerPayload {
  1: PayloadProtocol protocol
  2: PayloadFormat format
  3: string data
}

struct SnowplowRawEvent {
  1: i64 timestamp
  20: string collector
  30: string encoding
  40: string ipAddress
  41: optional TrackerPayload payload
  45: optional string hostname
  50: optional string userAgent
  60: optional string refererUri
  70: optional list<string> headers
  80: optional string networkUserId
}
