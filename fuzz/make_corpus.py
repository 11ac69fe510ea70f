#!/usr/bin/python3
# Writes the committed seed corpus fuzz/corpus/<target>/ (run: /usr/bin/python3 fuzz/make_corpus.py).
# Seeds are small valid files (so mutations reach deep checks) and a few invalid ones (so each rejection
# path is in the corpus from the start). The coder seeds carry a checksum computed here from the
# definition in docs/file-formats.md with zlib's CRC-32, independently of tconv's own code.
import io
import json
import os
import struct
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def out(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# ---- .npy ----
def npy(arr, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, arr)
    else:
        np.lib.format.write_array(b, arr, version=version)
    return b.getvalue()


a = (np.arange(6, dtype='<f4') - 2).reshape(2, 3)
out('fuzz_npy', 'c_f4', npy(a))
out('fuzz_npy', 'fortran_f4', npy(np.asfortranarray(a)))
out('fuzz_npy', 'fortran_3d_f2', npy(np.asfortranarray(np.arange(12, dtype='<f2').reshape(2, 3, 2))))
out('fuzz_npy', 'f8', npy(np.array([0.1, -2.5], dtype='<f8')))
out('fuzz_npy', 'u1', npy(np.array([1, 2, 255], dtype='u1')))
out('fuzz_npy', 'scalar', npy(np.array(3.5, dtype='<f4')))
out('fuzz_npy', 'empty', npy(np.zeros((0, 4), dtype='<f4')))
out('fuzz_npy', 'v2', npy(a, (2, 0)))
out('fuzz_npy', 'v3', npy(a, (3, 0)))
out('fuzz_npy', 'bad_big_endian', npy(a.astype('>f4')))
out('fuzz_npy', 'bad_int32', npy(np.arange(3, dtype='<i4')))
out('fuzz_npy', 'bad_truncated', npy(a)[:-3])
out('fuzz_npy', 'bad_magic', b'\x93NUMPX\x01\x00\x10\x00' + b'{}' + b' ' * 14)


# ---- safetensors ----
def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes) in file order."""
    header = {}
    if metadata is not None:
        header['__metadata__'] = metadata
    data = b''
    for name, dtype, shape, raw in tensors:
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(',', ':'), sort_keys=True).encode('utf-8')
    if pad:
        text += b' ' * ((8 - len(text) % 8) % 8)
    return struct.pack('<Q', len(text)) + text + data


f4 = np.arange(4, dtype='<f4').tobytes()
st_tensors = [('w', 'F32', [2, 2], f4), ('h', 'F16', [2], np.array([1, 2], '<f2').tobytes()),
              ('b', 'BF16', [1], b'\x80\x3f'), ('u', 'U8', [3], b'\x01\x02\x03'), ('z', 'F32', [0, 3], b''),
              ('s', 'F32', [], b'\x00\x00\x80\x3f')]
out('fuzz_safetensors', 'all_dtypes', safetensors(st_tensors, {'format': 'pt', 'k': 'v'}))
out('fuzz_safetensors', 'empty', safetensors([]))
out('fuzz_safetensors', 'unpadded', safetensors(st_tensors[:2], None, pad=False))
out('fuzz_safetensors', 'bad_f64', safetensors([('d', 'F64', [1], b'\x00' * 8)]))
overlap = json.dumps({'a': {'dtype': 'U8', 'shape': [4], 'data_offsets': [0, 4]},
                      'b': {'dtype': 'U8', 'shape': [4], 'data_offsets': [2, 6]}}, separators=(',', ':')).encode()
out('fuzz_safetensors', 'bad_overlap', struct.pack('<Q', len(overlap)) + overlap + b'\x00' * 6)
out('fuzz_safetensors', 'bad_truncated', safetensors(st_tensors)[:-1])


# ---- coder ----
def coder(metadata, tensors):
    """A tconv coder file: metadata (str->str) and tensors (name -> (dtype, shape, bytes))."""
    md = dict(metadata)
    md['tconv.format'] = 'tconv-coder'
    md['tconv.version'] = '1'

    def u64(v):
        return struct.pack('<Q', v)

    def s(x):
        x = x.encode('utf-8')
        return u64(len(x)) + x

    stream = u64(len(md))
    for k in sorted(md, key=lambda k: k.encode('utf-8')):
        stream += s(k) + s(md[k])
    stream += u64(len(tensors))
    for name in sorted(tensors, key=lambda k: k.encode('utf-8')):
        dtype, shape, raw = tensors[name]
        stream += s(name) + s(dtype) + u64(len(shape)) + b''.join(u64(d) for d in shape) + u64(len(raw)) + raw
    md['tconv.crc32'] = '%08x' % zlib.crc32(stream)
    size = {'F32': 4, 'F16': 2, 'BF16': 2, 'U8': 1}
    order = sorted(tensors, key=lambda n: (-size[tensors[n][0]], n.encode('utf-8')))
    return safetensors([(n,) + tuple(tensors[n]) for n in order], md)


kernel = coder({'kernel.class': 'ConvolutionTranspose', 'descriptor.kernel_width': '3',
                'descriptor.stride': '2', 'neuron.a': '0x1.999999999999ap-4', 'descriptor.bias': 'true'},
               {'weights': ('F32', [2, 3, 3, 1], np.arange(18, dtype='<f4').tobytes()),
                'bias': ('F32', [2], np.zeros(2, '<f4').tobytes())})
out('fuzz_coder', 'kernel', kernel)
out('fuzz_coder', 'scalars_only', coder({'a': '-7', 'b': 'inf', 'c': 'false', 'd': 'text'}, {}))
out('fuzz_coder', 'empty', coder({}, {}))
out('fuzz_coder', 'u8_tensor', coder({}, {'t': ('U8', [3], b'\x01\x02\x03'), 'h': ('BF16', [1], b'\x80\x3f')}))
out('fuzz_coder', 'bad_version', kernel.replace(b'"tconv.version":"1"', b'"tconv.version":"2"'))
out('fuzz_coder', 'bad_plain_safetensors', safetensors(st_tensors, {'format': 'pt'}))

# ---- core problem and MPS geometry: raw bytes read by FuzzedDataProvider ----
out('fuzz_problem', 'zeros', b'\x00' * 64)
out('fuzz_problem', 'small', bytes(range(1, 65)))
out('fuzz_problem', 'ones', b'\x01' * 96)
out('fuzz_problem', 'mixed', bytes((i * 37 + 11) % 256 for i in range(128)))
out('fuzz_mps_geometry', 'zeros', b'\x00' * 48)
out('fuzz_mps_geometry', 'small', bytes(range(3, 51)))
out('fuzz_mps_geometry', 'mixed', bytes((i * 53 + 7) % 256 for i in range(64)))


# Regression seed: a valid problem whose MAC count passes 2^63 (n = 2^49, c_in = c_out = 2^10); it made
# Problem::macs() overflow before it saturated. FuzzedDataProvider takes integers from the END of the input,
# one byte each for these small ranges, so the bytes are written in reverse consumption order.
seq = [0]                     # direction: fwd
seq += [2, 49, 1]             # n: "power of two" branch, 2^49, +0
seq += [2, 10, 1] * 2         # c_in, c_out = 2^10
seq += [0, 4]                 # groups: "small" branch, -3 + 4 = 1
seq += [0, 4] * 10            # h_in, w_in, h_out, w_out, kh, kw, strides, dilations = 1
seq += [0, 3] * 2             # pad_h, pad_w = 0
seq += [1, 0, 0, 0, 0, 0]     # float32, fp32, no bias, no accumulate, no neuron
out('fuzz_problem', 'macs_overflow', bytes(reversed(seq)))
