//! Batches of packets to send, as the JavaScript layer hands them over: payloads back to back
//! in one byte array with their lengths beside them, and optionally one timestamp each.

use napi::bindgen_prelude::{FromNapiValue, TypedArray, TypedArrayType, Unknown};
use udpcom_engine::Error;

use crate::args::{describe, label, quoted};

/// The packets of a flat batch with their deadlines (0: as soon as possible). Checks that the
/// lengths fit in `bytes` and that the timestamps are non-negative, one per packet.
pub fn flat_batch<'a>(
    bytes: &'a [u8],
    lengths: &[u32],
    count: usize,
    timestamps_ns: Option<Unknown<'_>>,
) -> Result<Vec<(&'a [u8], u64)>, Error> {
    if count > lengths.len() {
        return Err(Error::invalid_arg_value(
            &label("lengths"),
            &format!("must hold a length per packet ({count})"),
            format!("{} lengths", lengths.len()),
        ));
    }
    let deadlines = deadlines(timestamps_ns, count)?;
    let mut batch = Vec::with_capacity(count);
    let mut offset = 0usize;
    for (i, &length) in lengths[..count].iter().enumerate() {
        let end = offset + length as usize;
        let Some(payload) = bytes.get(offset..end) else {
            return Err(Error::invalid_arg_value(
                &label("lengths"),
                &format!("must add up to at most the {} bytes given", bytes.len()),
                format!("{end} bytes by lengths[{i}]"),
            ));
        };
        batch.push((payload, deadlines.get(i).copied().unwrap_or(0)));
        offset = end;
    }
    Ok(batch)
}

/// One deadline per packet from a BigUint64Array or BigInt64Array; none when omitted.
fn deadlines(timestamps_ns: Option<Unknown<'_>>, count: usize) -> Result<Vec<u64>, Error> {
    let name = "timestampsNs";
    let Some(value) = timestamps_ns else {
        return Ok(Vec::new());
    };
    let view = match TypedArray::from_unknown(value) {
        Ok(view)
            if matches!(
                view.typed_array_type,
                TypedArrayType::BigInt64 | TypedArrayType::BigUint64
            ) =>
        {
            view
        }
        _ => {
            return Err(Error::invalid_arg_type(
                &label(name),
                "an instance of BigInt64Array, BigUint64Array or Array of bigint",
                &describe(&value),
            ))
        }
    };
    let signed = view.typed_array_type == TypedArrayType::BigInt64;
    let words: Vec<u64> = view
        .arraybuffer
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
        .collect();
    if words.len() != count {
        return Err(Error::invalid_arg_value(
            &label(name),
            &format!("must have one timestamp per packet ({count})"),
            format!("{} timestamps", words.len()),
        ));
    }
    if let Some(i) = words.iter().position(|&w| signed && (w as i64) < 0) {
        return Err(Error::out_of_range(
            &quoted(&format!("{name}[{i}]")),
            ">= 0n",
            format!("{}n", words[i] as i64),
        ));
    }
    Ok(words)
}
