//! Route identity.
//!
//! A route is named by seven parts, printed `plane.layer.owner.family.stream.variant.vN`:
//! `read.logical.greenhouse.climate.temperature.meta.v1`. Owner, family and stream are
//! lowercase identifiers (`[a-z][a-z0-9_]*`, at most 48 bytes), so no part can contain a dot
//! and the printed form is injective: two different routes never print alike, and parsing a
//! printed route gives the same route back.

use std::fmt;
use std::str::FromStr;

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The lowercase word used in printed routes.
            pub const fn word(self) -> &'static str {
                match self { $($name::$variant => $word,)* }
            }

            /// The value for a printed word.
            pub fn from_word(word: &str) -> Option<$name> {
                match word { $($word => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}

word_enum! {
    /// What a route is for.
    Plane {
        /// Observed or derived data.
        Read = "read",
        /// Intent and commands (with their shadow routes).
        Write = "write",
        /// Materialized state.
        State = "state",
        /// Requests and replies of the query plane.
        Query = "query",
        /// Audit and trace streams.
        Debug = "debug",
    }
}

word_enum! {
    /// How close to the device, and how heavy, a route is.
    Layer {
        /// Device-level readings and commands.
        Raw = "raw",
        /// Semantic, application-level streams.
        Logical = "logical",
        /// Desired, reported and effective routes of a write binding.
        Shadow = "shadow",
        /// Large payloads, opened on demand.
        Bulk = "bulk",
        /// Runtime plumbing.
        Internal = "internal",
        /// Short-lived, not replayable.
        Ephemeral = "ephemeral",
    }
}

word_enum! {
    /// Which surface of a stream a route is.
    Variant {
        /// Metadata or a small value.
        Meta = "meta",
        /// A bulk payload.
        Payload = "payload",
        /// A request (write or command).
        Request = "request",
        /// The desired value of a setting.
        Desired = "desired",
        /// The value a device reports.
        Reported = "reported",
        /// The value in effect.
        Effective = "effective",
        /// An acknowledgement.
        Ack = "ack",
        /// A state snapshot.
        State = "state",
        /// A discrete event.
        Event = "event",
        /// Health of a component.
        Health = "health",
        /// A query-plane request.
        QueryRequest = "query_request",
        /// A query-plane reply.
        QueryResponse = "query_response",
    }
}

/// The longest owner, family or stream segment, in bytes.
pub const SEGMENT_LEN_MAX: usize = 48;

/// Why a route or one of its parts is invalid. The message names the part and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError(pub String);

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouteError {}

/// Checks an owner, family or stream segment.
pub fn check_segment(part: &str, value: &str) -> Result<(), RouteError> {
    let bad = |why: &str| Err(RouteError(format!("route {part} {value:?} is invalid: {why}")));
    if value.is_empty() {
        return bad("it is empty");
    }
    if value.len() > SEGMENT_LEN_MAX {
        return bad(&format!("it is longer than {SEGMENT_LEN_MAX} bytes"));
    }
    let mut chars = value.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return bad("it must start with a lowercase letter a-z");
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        return bad(&format!("{c:?} is not allowed (use a-z, 0-9 and _)"));
    }
    Ok(())
}

/// A route's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    plane: Plane,
    layer: Layer,
    owner: String,
    family: String,
    stream: String,
    variant: Variant,
    version: u32,
}

impl Route {
    /// A route from its parts; segments are validated and the version must be at least 1.
    pub fn new(
        plane: Plane,
        layer: Layer,
        owner: &str,
        family: &str,
        stream: &str,
        variant: Variant,
        version: u32,
    ) -> Result<Route, RouteError> {
        check_segment("owner", owner)?;
        check_segment("family", family)?;
        check_segment("stream", stream)?;
        if version == 0 {
            return Err(RouteError("route version must be at least 1".into()));
        }
        Ok(Route {
            plane,
            layer,
            owner: owner.into(),
            family: family.into(),
            stream: stream.into(),
            variant,
            version,
        })
    }

    /// The plane.
    pub fn plane(&self) -> Plane {
        self.plane
    }
    /// The layer.
    pub fn layer(&self) -> Layer {
        self.layer
    }
    /// The owner segment.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// The family segment.
    pub fn family(&self) -> &str {
        &self.family
    }
    /// The stream segment.
    pub fn stream(&self) -> &str {
        &self.stream
    }
    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }
    /// The version (at least 1).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The same route with other parts replaced (validated again).
    pub fn with_variant(&self, variant: Variant) -> Route {
        Route { variant, ..self.clone() }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}.{}.{}.v{}",
            self.plane, self.layer, self.owner, self.family, self.stream, self.variant, self.version
        )
    }
}

impl FromStr for Route {
    type Err = RouteError;

    fn from_str(text: &str) -> Result<Route, RouteError> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() != 7 {
            return Err(RouteError(format!(
                "route {text:?} has {} dot-separated parts; expected 7: plane.layer.owner.family.stream.variant.vN",
                parts.len()
            )));
        }
        let word = |i: usize, name: &str, words: &[&str]| {
            RouteError(format!("route {text:?}: {name} {:?} is not one of {}", parts[i], words.join(", ")))
        };
        let plane = Plane::from_word(parts[0])
            .ok_or_else(|| word(0, "plane", &Plane::ALL.iter().map(|p| p.word()).collect::<Vec<_>>()))?;
        let layer = Layer::from_word(parts[1])
            .ok_or_else(|| word(1, "layer", &Layer::ALL.iter().map(|p| p.word()).collect::<Vec<_>>()))?;
        let variant = Variant::from_word(parts[5])
            .ok_or_else(|| word(5, "variant", &Variant::ALL.iter().map(|p| p.word()).collect::<Vec<_>>()))?;
        let version_text = parts[6];
        let digits = version_text.strip_prefix('v').unwrap_or("");
        let version = if digits.is_empty() || digits.starts_with('0') || !digits.chars().all(|c| c.is_ascii_digit()) {
            None
        } else {
            digits.parse::<u32>().ok()
        };
        let version = version.ok_or_else(|| {
            RouteError(format!("route {text:?}: version {version_text:?} must be v1, v2, ... (no leading zeros)"))
        })?;
        Route::new(plane, layer, parts[2], parts[3], parts[4], variant, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printing and parsing are inverse.
    #[test]
    fn print_parse_round_trip() {
        let r = Route::new(Plane::Write, Layer::Shadow, "fan", "climate", "setpoint", Variant::Desired, 3).unwrap();
        assert_eq!(r.to_string(), "write.shadow.fan.climate.setpoint.desired.v3");
        assert_eq!(r.to_string().parse::<Route>().unwrap(), r);
    }

    /// Segments that would make printing ambiguous are refused with the rule named.
    #[test]
    fn ambiguous_segments_are_refused() {
        for bad in ["o.x", "", "Upper", "1abc", "a-b", "a b"] {
            let err = Route::new(Plane::Read, Layer::Raw, bad, "f", "s", Variant::Meta, 1).unwrap_err();
            assert!(err.0.contains("owner"), "{err}");
        }
        assert!(Route::new(Plane::Read, Layer::Raw, "o", "f", "s", Variant::Meta, 0).is_err());
    }

    /// Malformed text gives a sentence naming the bad part.
    #[test]
    fn parse_errors_name_the_part() {
        assert!("read.logical.a.b.c.meta".parse::<Route>().unwrap_err().0.contains("expected 7"));
        assert!("read.fancy.a.b.c.meta.v1".parse::<Route>().unwrap_err().0.contains("layer"));
        assert!("read.logical.a.b.c.meta.v01".parse::<Route>().unwrap_err().0.contains("leading zeros"));
        assert!("read.logical.a.b.c.meta.1".parse::<Route>().unwrap_err().0.contains("version"));
    }
}
