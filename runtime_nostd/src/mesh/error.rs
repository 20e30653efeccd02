//! [`MeshError`]: the one flat error enum of the node link.

/// Why a node-link message could not be decoded, encoded or sent, or why a configuration is
/// unusable. Each variant is `operation + failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshError {
    /// The message is cut short (a field runs past its end).
    DecodeShort,
    /// The first byte is not a node-link kind (0xc0..=0xc8, or 0xcf for a sealed frame).
    DecodeUnknownKind,
    /// A varint is longer than its type, or not in its shortest form.
    DecodeBadVarint,
    /// A field has a value out of its range (a name that is not UTF-8, unknown flag bits, a
    /// sequence number that does not increase...).
    DecodeBadField,
    /// A name, list or payload is longer than the protocol allows.
    DecodeTooLong,
    /// Bytes follow the message's last field.
    DecodeTrailingBytes,
    /// The message does not fit the output buffer, the link's MTU or a window slot.
    EncodeTooLong,
    /// An event was sent before the session is up.
    SendNotUp,
    /// Every slot of the send window is taken (unacknowledged or unsent events): the caller
    /// decides (count the event as dropped and taint the route's next one).
    SendWindowFull,
    /// The event's route is not one of the link's declared crossing routes.
    SendRouteUnknown,
    /// A fetch on a link that does not provide lazy payloads.
    FetchUnsupported,
    /// The queue of fetch requests and replies is full.
    FetchQueueFull,
    /// (keyed link) The frame's MAC is wrong.
    AuthBadMac,
    /// (keyed link) The frame's counter was seen already, or is older than the replay window.
    AuthReplayed,
    /// (keyed link) The frame carries no MAC.
    AuthUnkeyed,
    /// The configuration names a node, node name or link longer than [`super::NAME_MAX`].
    ConfigNameTooLong,
    /// The configuration declares more than [`super::ROUTES_MAX`] routes, or one twice.
    ConfigTooManyRoutes,
    /// The configuration's MTU is below [`super::MTU_MIN`].
    ConfigMtuTooSmall,
    /// The hello does not fit the MTU (too many routes for it).
    ConfigHelloTooLong,
}

impl MeshError {
    /// A short, stable name (logs, counters, the spec).
    pub const fn name(self) -> &'static str {
        match self {
            MeshError::DecodeShort => "decode_short",
            MeshError::DecodeUnknownKind => "decode_unknown_kind",
            MeshError::DecodeBadVarint => "decode_bad_varint",
            MeshError::DecodeBadField => "decode_bad_field",
            MeshError::DecodeTooLong => "decode_too_long",
            MeshError::DecodeTrailingBytes => "decode_trailing_bytes",
            MeshError::EncodeTooLong => "encode_too_long",
            MeshError::SendNotUp => "send_not_up",
            MeshError::SendWindowFull => "send_window_full",
            MeshError::SendRouteUnknown => "send_route_unknown",
            MeshError::FetchUnsupported => "fetch_unsupported",
            MeshError::FetchQueueFull => "fetch_queue_full",
            MeshError::AuthBadMac => "auth_bad_mac",
            MeshError::AuthReplayed => "auth_replayed",
            MeshError::AuthUnkeyed => "auth_unkeyed",
            MeshError::ConfigNameTooLong => "config_name_too_long",
            MeshError::ConfigTooManyRoutes => "config_too_many_routes",
            MeshError::ConfigMtuTooSmall => "config_mtu_too_small",
            MeshError::ConfigHelloTooLong => "config_hello_too_long",
        }
    }
}

impl core::fmt::Display for MeshError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
