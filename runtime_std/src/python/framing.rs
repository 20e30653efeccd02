//! Bindings for `manyfold-framing`: `encode_frame`, `encode_datagram`, `decode_datagram`,
//! `FrameDecoder` and `DecoderStats`. Errors are raised as `manyfold.framing.FrameError`, a
//! Python class that carries the failure's `kind`.

use manyfold_framing::{self as framing, FrameDecoder as CoreDecoder, FrameError as CoreError};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList};

/// The ceiling on `max_message`: a decoder allocates a buffer of about this size, so a typo
/// must not allocate gigabytes. 16 MiB is far above any link's message size.
const MAX_MESSAGE_CEILING: usize = 16 * 1024 * 1024;

static FRAME_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Short, stable names for each failure; `manyfold.framing.FrameErrorKind` has the same values.
fn kind_of(error: &CoreError) -> &'static str {
    match error {
        CoreError::EncodeEmptyMessage => "empty_message",
        CoreError::EncodeMessageTooLong { .. } => "message_too_long",
        CoreError::EncodeBufferTooSmall { .. } => "buffer_too_small",
        CoreError::DecodeBadCobs => "bad_cobs",
        CoreError::DecodeShortBody { .. } => "short_body",
        CoreError::DecodeOversize { .. } => "oversize",
        CoreError::DecodeBadCrc { .. } => "bad_crc",
        _ => "invalid_config",
    }
}

/// An instance of `manyfold.framing.FrameError(message, kind)` (not raised).
fn frame_error_object<'py>(py: Python<'py>, error: &CoreError) -> PyResult<Bound<'py, PyAny>> {
    let class = FRAME_ERROR.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("manyfold.framing")?.getattr("FrameError")?.unbind())
    })?;
    class.bind(py).call1((error.to_string(), kind_of(error)))
}

fn to_py_err(py: Python<'_>, error: CoreError) -> PyErr {
    match frame_error_object(py, &error) {
        Ok(instance) => PyErr::from_value(instance),
        Err(import_failure) => import_failure,
    }
}

fn check_max_message(max_message: usize) -> PyResult<()> {
    if max_message == 0 || max_message > MAX_MESSAGE_CEILING {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "max_message must be between 1 and {MAX_MESSAGE_CEILING} bytes, got {max_message}"
        )));
    }
    Ok(())
}

/// Encode `message` as a stream frame: COBS(message || crc32c) followed by 0x00.
#[pyfunction]
#[pyo3(signature = (message, max_message = framing::MESSAGE_LEN_MAX_DEFAULT))]
fn encode_frame<'py>(py: Python<'py>, message: &[u8], max_message: usize) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = vec![0u8; framing::frame_len_max(message.len())];
    let len = framing::encode_frame(message, &mut out, max_message).map_err(|e| to_py_err(py, e))?;
    Ok(PyBytes::new(py, &out[..len]))
}

/// Encode `message` as a datagram: message || crc32c, without COBS or delimiter.
#[pyfunction]
#[pyo3(signature = (message, max_message = framing::MESSAGE_LEN_MAX_DEFAULT))]
fn encode_datagram<'py>(py: Python<'py>, message: &[u8], max_message: usize) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = vec![0u8; framing::body_len(message.len())];
    let len = framing::encode_datagram(message, &mut out, max_message).map_err(|e| to_py_err(py, e))?;
    Ok(PyBytes::new(py, &out[..len]))
}

/// Decode a datagram and return its message; raises FrameError when it is short, oversize or
/// fails its CRC.
#[pyfunction]
#[pyo3(signature = (datagram, max_message = framing::MESSAGE_LEN_MAX_DEFAULT))]
fn decode_datagram<'py>(py: Python<'py>, datagram: &[u8], max_message: usize) -> PyResult<Bound<'py, PyBytes>> {
    let message = framing::decode_datagram(datagram, max_message).map_err(|e| to_py_err(py, e))?;
    Ok(PyBytes::new(py, message))
}

/// CRC-32C (Castagnoli) of `data`.
#[pyfunction]
fn crc32c(data: &[u8]) -> u32 {
    framing::crc32c(data)
}

/// Received bytes: borrowed from a `bytes` object, or copied out of any other buffer
/// (bytearray, memoryview) so a later resize of that buffer cannot invalidate the slice.
enum ByteInput<'py> {
    Borrowed(Bound<'py, PyBytes>),
    Copied(Vec<u8>),
}

impl<'py> ByteInput<'py> {
    fn from_py(data: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = data.cast::<PyBytes>() {
            return Ok(ByteInput::Borrowed(bytes.clone()));
        }
        match PyBuffer::<u8>::get(data) {
            Ok(buffer) => Ok(ByteInput::Copied(buffer.to_vec(data.py())?)),
            Err(_) => Err(PyTypeError::new_err(format!(
                "expected bytes, bytearray or memoryview of bytes, got {}",
                data.get_type().name()?
            ))),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            ByteInput::Borrowed(bytes) => bytes.as_bytes(),
            ByteInput::Copied(vec) => vec,
        }
    }
}

/// Frame outcome counts of a FrameDecoder, frozen at the moment `.stats` was read.
#[pyclass(module = "manyfold.framing", name = "DecoderStats", frozen, eq)]
#[derive(PartialEq, Eq)]
struct DecoderStats {
    /// Frames that carried a valid message.
    #[pyo3(get)]
    frames: u64,
    /// Frames whose COBS text was malformed.
    #[pyo3(get)]
    cobs_errors: u64,
    /// Frames whose CRC-32C did not match.
    #[pyo3(get)]
    crc_errors: u64,
    /// Frames whose body was shorter than 5 bytes.
    #[pyo3(get)]
    short_frames: u64,
    /// Frames whose message exceeded max_message.
    #[pyo3(get)]
    oversize_frames: u64,
}

#[pymethods]
impl DecoderStats {
    /// Frames rejected for any reason.
    #[getter]
    fn rejected(&self) -> u64 {
        self.cobs_errors + self.crc_errors + self.short_frames + self.oversize_frames
    }

    fn __repr__(&self) -> String {
        format!(
            "DecoderStats(frames={}, cobs_errors={}, crc_errors={}, short_frames={}, oversize_frames={})",
            self.frames, self.cobs_errors, self.crc_errors, self.short_frames, self.oversize_frames
        )
    }
}

/// Streaming decoder for byte-stream links (serial, TCP). Feed it bytes in any pieces; it
/// returns whole messages, resynchronizes at every 0x00, and counts rejected frames by cause
/// in `.stats`. Memory is fixed at construction (about max_message bytes).
#[pyclass(module = "manyfold.framing", name = "FrameDecoder")]
struct FrameDecoder {
    inner: CoreDecoder<Box<[u8]>>,
}

#[pymethods]
impl FrameDecoder {
    #[new]
    #[pyo3(signature = (max_message = framing::MESSAGE_LEN_MAX_DEFAULT))]
    fn new(py: Python<'_>, max_message: usize) -> PyResult<Self> {
        check_max_message(max_message)?;
        let inner = CoreDecoder::with_max_message(max_message).map_err(|e| to_py_err(py, e))?;
        Ok(FrameDecoder { inner })
    }

    /// Feed received bytes (bytes, bytearray or memoryview); returns the messages of the
    /// frames they completed, in order.
    fn feed<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let data = ByteInput::from_py(data)?;
        let data = data.as_slice();
        let messages = PyList::empty(py);
        let mut failure: Option<PyErr> = None;
        self.inner.feed(data, |outcome| {
            if let (Ok(message), None) = (outcome, &failure) {
                if let Err(e) = messages.append(PyBytes::new(py, message)) {
                    failure = Some(e);
                }
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(messages),
        }
    }

    /// Like `feed`, but also returns a FrameError (not raised) in place of each rejected
    /// frame, so a caller can say what was dropped and why.
    fn feed_outcomes<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let data = ByteInput::from_py(data)?;
        let data = data.as_slice();
        let outcomes = PyList::empty(py);
        let mut failure: Option<PyErr> = None;
        self.inner.feed(data, |outcome| {
            if failure.is_some() {
                return;
            }
            let item = match outcome {
                Ok(message) => Ok(PyBytes::new(py, message).into_any()),
                Err(error) => frame_error_object(py, &error),
            };
            if let Err(e) = item.and_then(|obj| outcomes.append(obj)) {
                failure = Some(e);
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    }

    /// Forget an unfinished frame, for example after a link reconnects.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// The largest message this decoder accepts, in bytes.
    #[getter]
    fn max_message(&self) -> usize {
        self.inner.max_message()
    }

    /// Bytes of an unfinished frame received since the last delimiter.
    #[getter]
    fn pending_len(&self) -> usize {
        self.inner.pending_len()
    }

    /// Outcome counts so far, as a DecoderStats snapshot.
    #[getter]
    fn stats(&self) -> DecoderStats {
        let s = self.inner.stats();
        DecoderStats {
            frames: s.frames,
            cobs_errors: s.cobs_errors,
            crc_errors: s.crc_errors,
            short_frames: s.short_frames,
            oversize_frames: s.oversize_frames,
        }
    }

    fn __repr__(&self) -> String {
        format!("FrameDecoder(max_message={})", self.inner.max_message())
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(encode_datagram, m)?)?;
    m.add_function(wrap_pyfunction!(decode_datagram, m)?)?;
    m.add_function(wrap_pyfunction!(crc32c, m)?)?;
    m.add_class::<FrameDecoder>()?;
    m.add_class::<DecoderStats>()?;
    Ok(())
}
