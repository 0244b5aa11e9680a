//! A safetensors checkpoint read tensor by tensor from the file, for the loader.
//!
//! burn-store's `SafetensorsStore::from_file` memory-maps the file and copies each tensor out
//! of the map when it is applied; every page the copies touch stays in the process's resident
//! set until the last snapshot is dropped, so loading a checkpoint peaked at twice its size
//! (320 MB for a 148 MB MiniLM checkpoint, docs/performance.md). Here only the header is read
//! up front; each snapshot reads its own byte range when it is applied (the page cache keeps
//! the file, outside the process), so the peak is the model plus one tensor.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::module::ParamId;
use burn::tensor::{DType, TensorData};
use burn_store::{SafetensorsStoreError, TensorSnapshot, TensorSnapshotError};
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensorError};

use crate::error::{Error, Result};

/// The tensors of the safetensors file at `path`, by name, each read from the file when its
/// data is asked for.
///
/// # Errors
/// The file cannot be read, its header is not a valid safetensors header, or a tensor has a
/// type Burn does not store.
pub(crate) fn read_lazily(path: &Path) -> Result<BTreeMap<String, TensorSnapshot>> {
    let invalid = |source: SafetensorsStoreError| Error::SafetensorsRead {
        path: path.to_path_buf(),
        source,
    };
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut header = vec![0_u8; 8];
    file.read_exact(&mut header).map_err(io)?;
    let n = u64::from_le_bytes(header[..8].try_into().expect("eight bytes"));
    let file_len = file.metadata().map_err(io)?.len();
    if n > file_len.saturating_sub(8) {
        return Err(invalid(SafetensorsStoreError::Safetensors(
            SafeTensorError::InvalidHeaderLength,
        )));
    }
    header.resize(8 + n as usize, 0);
    file.read_exact(&mut header[8..]).map_err(io)?;
    // (`SafeTensors::read_metadata` wants the whole file in memory.)
    let metadata: Metadata = serde_json::from_slice(&header[8..]).map_err(|e| {
        invalid(SafetensorsStoreError::Safetensors(
            SafeTensorError::InvalidHeaderDeserialization(e),
        ))
    })?;
    let data_start = 8 + n;

    let mut out = BTreeMap::new();
    for (name, info) in metadata.tensors() {
        let dtype = burn_dtype(info.dtype).ok_or_else(|| {
            invalid(SafetensorsStoreError::Other(format!(
                "tensor `{name}`: unsupported dtype {:?}",
                info.dtype
            )))
        })?;
        let (begin, end) = info.data_offsets;
        let expected = info.shape.iter().product::<usize>() * info.dtype.bitsize() / 8;
        if end < begin || end - begin != expected {
            return Err(invalid(SafetensorsStoreError::Other(format!(
                "tensor `{name}`: {} bytes for shape {:?} of {:?} (expected {expected})",
                end.saturating_sub(begin),
                info.shape,
                info.dtype
            ))));
        }
        if data_start + end as u64 > file_len {
            return Err(invalid(SafetensorsStoreError::Other(format!(
                "tensor `{name}`: bytes {begin}..{end} of the data lie past the end of the file"
            ))));
        }
        let range = Range {
            path: path.to_path_buf(),
            offset: data_start + begin as u64,
            len: end - begin,
            shape: info.shape.clone(),
            dtype,
        };
        let path_parts = name.split('.').map(str::to_string).collect();
        let snapshot = TensorSnapshot::from_closure(
            Rc::new(move || range.read()),
            dtype,
            info.shape.clone().into(),
            path_parts,
            vec![],
            ParamId::new(),
        );
        out.insert(name, snapshot);
    }
    Ok(out)
}

/// Where one tensor's bytes lie in the file.
struct Range {
    path: PathBuf,
    offset: u64,
    len: usize,
    shape: Vec<usize>,
    dtype: DType,
}

impl Range {
    fn read(&self) -> core::result::Result<TensorData, TensorSnapshotError> {
        let fail = |e: std::io::Error| {
            TensorSnapshotError::IoError(format!("{}: {e}", self.path.display()))
        };
        let mut file = File::open(&self.path).map_err(fail)?;
        file.seek(SeekFrom::Start(self.offset)).map_err(fail)?;
        if self.dtype == DType::F32 {
            let values = read_f32(&mut file, self.len).map_err(fail)?;
            return Ok(TensorData::new(values, self.shape.clone()));
        }
        let mut bytes = vec![0_u8; self.len];
        file.read_exact(&mut bytes).map_err(fail)?;
        Ok(TensorData::from_bytes_vec(
            bytes,
            self.shape.clone(),
            self.dtype,
        ))
    }
}

/// `len` bytes of little-endian f32 values, read through a small buffer straight into the
/// vector the tensor keeps. (Bytes read into a `Vec<u8>` are copied once more when Burn makes
/// them a tensor, since that allocation is not aligned for f32: for a checkpoint that is a
/// second pass over fresh memory as large as the file.)
fn read_f32(file: &mut File, len: usize) -> std::io::Result<Vec<f32>> {
    const BUFFER: usize = 1 << 16;
    let mut values = Vec::with_capacity(len / 4);
    let mut buffer = vec![0_u8; BUFFER.min(len)];
    let mut left = len;
    while left > 0 {
        let part = &mut buffer[..BUFFER.min(left)];
        file.read_exact(part)?;
        values.extend(
            part.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes"))),
        );
        left -= part.len();
    }
    Ok(values)
}

/// Burn's type for a safetensors element type (the ones burn-store reads).
fn burn_dtype(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U64 => DType::U64,
        Dtype::U32 => DType::U32,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool(burn::tensor::BoolStore::Native),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use safetensors::tensor::TensorView;

    use super::*;

    /// A file of two f32 tensors and one i64 tensor.
    fn write(dir: &Path) -> (PathBuf, Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        let b: Vec<f32> = vec![3.25, -0.0, f32::MIN_POSITIVE];
        let ids: Vec<i64> = vec![7, -2];
        let bytes = |v: &[u8]| v.to_vec();
        let (ab, bb, ib) = (
            bytes(&a.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()),
            bytes(&b.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()),
            bytes(&ids.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()),
        );
        let views = [
            (
                "encoder.a",
                TensorView::new(Dtype::F32, vec![3, 4], &ab).unwrap(),
            ),
            ("b", TensorView::new(Dtype::F32, vec![3], &bb).unwrap()),
            ("ids", TensorView::new(Dtype::I64, vec![2], &ib).unwrap()),
        ];
        let path = dir.join("m.safetensors");
        safetensors::serialize_to_file(views, None, &path).unwrap();
        (path, a, b)
    }

    #[test]
    fn every_tensor_reads_back_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let (path, a, b) = write(dir.path());
        let snapshots = read_lazily(&path).unwrap();
        assert_eq!(
            snapshots.keys().map(String::as_str).collect::<Vec<_>>(),
            ["b", "encoder.a", "ids"]
        );
        let values = |key: &str| snapshots[key].to_data().unwrap();
        let data = values("encoder.a");
        assert_eq!(data.shape.to_vec(), [3, 4]);
        assert_eq!(data.to_vec::<f32>().unwrap(), a);
        let data = values("b");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&data.to_vec::<f32>().unwrap()), bits(&b));
        assert_eq!(values("ids").to_vec::<i64>().unwrap(), [7, -2]);
        assert_eq!(snapshots["encoder.a"].dtype, DType::F32);
    }

    #[test]
    fn an_f32_tensor_larger_than_the_read_buffer_reads_back_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        // About 2.4 buffers of 64 KiB; both signs, subnormals and even exponents up to 254
        // (bit 23 cleared: no NaN or infinity).
        let values: Vec<f32> = (0..40_000_u32)
            .map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761) & 0xff7f_ffff))
            .collect();
        let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![200, 200], &bytes).unwrap();
        let path = dir.path().join("big.safetensors");
        safetensors::serialize_to_file([("w", view)], None, &path).unwrap();
        let data = read_lazily(&path).unwrap()["w"].to_data().unwrap();
        assert_eq!(data.shape.to_vec(), [200, 200]);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&data.to_vec::<f32>().unwrap()), bits(&values));
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_it_and_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, _) = write(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 4).unwrap();
        let err = read_lazily(&path).unwrap_err().to_string();
        assert!(err.contains("m.safetensors"), "{err}");
        assert!(err.contains("past the end of the file"), "{err}");

        std::fs::write(&path, [1_u8, 2, 3]).unwrap();
        let err = read_lazily(&path).unwrap_err().to_string();
        assert!(err.contains("m.safetensors"), "{err}");
    }
}
