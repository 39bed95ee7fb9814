"""Metadata: ctypes structures and NumPy structured dtypes <-> the channel's schema.

A channel stores the layout of its metadata (field names, element types, counts, offsets, size,
alignment), so a reader rebuilds a ctypes ``Structure`` for it without the writer's source.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, Dict, List, Optional, Tuple, Type

import numpy as np

#: (type name, size, align, [(field, dtype name, count, offset)]) as the extension takes it.
SchemaTuple = Tuple[str, int, int, List[Tuple[str, str, int, int]]]

_CTYPES: Dict[str, Any] = {
    "bool": ctypes.c_bool,
    "uint8": ctypes.c_uint8,
    "int8": ctypes.c_int8,
    "uint16": ctypes.c_uint16,
    "int16": ctypes.c_int16,
    "uint32": ctypes.c_uint32,
    "int32": ctypes.c_int32,
    "uint64": ctypes.c_uint64,
    "int64": ctypes.c_int64,
    "float32": ctypes.c_float,
    "float64": ctypes.c_double,
}

_SUPPORTED = ", ".join(_CTYPES)


def declared_dtype(meta: Any) -> Tuple[np.dtype, SchemaTuple]:
    """The structured dtype and schema of a ``meta=`` declaration: a ``ctypes.Structure``
    subclass, or anything ``numpy.dtype()`` turns into a structured dtype."""
    if isinstance(meta, type) and issubclass(meta, ctypes.Union):
        raise TypeError(f"metadata type {meta.__name__} is a ctypes Union: use a Structure")
    if isinstance(meta, type) and issubclass(meta, ctypes.Structure):
        for f in meta._fields_:
            if len(f) > 2:
                raise TypeError(
                    f"metadata field {meta.__name__}.{f[0]} is a bit field: use whole integers"
                )
        try:
            dt = np.dtype(meta)
        except (TypeError, ValueError, NotImplementedError) as e:
            raise TypeError(f"metadata type {meta.__name__} cannot be described: {e}") from None
        name, align = meta.__name__, ctypes.alignment(meta)
    else:
        try:
            dt = np.dtype(meta)
        except TypeError:
            raise TypeError(
                "meta= must be a ctypes.Structure subclass or a NumPy structured dtype, "
                f"not {meta!r}"
            ) from None
        name, align = "meta", dt.alignment
    if dt.names is None:
        raise TypeError(f"metadata dtype {dt} has no fields: use a structured dtype")
    fields = []
    for fname in dt.names:
        fdt, offset = dt.fields[fname][:2]  # type: ignore[index]
        base, count = fdt, 1
        while base.subdtype is not None:  # (c_float * 3) * 2 nests subarrays
            base, shape = base.subdtype
            count *= int(np.prod(shape))
        if base.names is not None or base.name not in _CTYPES or not base.isnative:
            raise TypeError(
                f"metadata field {fname!r} has type {fdt}: use {_SUPPORTED} "
                "or fixed-size arrays of them (e.g. ctypes.c_int32 * 3)"
            )
        fields.append((fname, base.name, count, int(offset)))
    if not fields:
        raise TypeError("the metadata type has no fields")
    return dt, (name[:31], dt.itemsize, max(1, int(align)), fields)


def encode(value: Any, dt: Optional[np.dtype]) -> Optional[bytes]:
    """The bytes of one metadata value laid out as ``dt``; ``None`` for no metadata."""
    if value is None:
        return None
    if dt is None:
        raise ValueError(
            "this channel declares no metadata: create the Writer with meta=YourStructure"
        )
    if isinstance(value, ctypes.Structure):
        vdt = np.dtype(type(value))
        raw = bytes(value)
        if vdt == dt:
            return raw
        value = np.frombuffer(raw, dtype=vdt)[0]
    if isinstance(value, dict):
        out = np.zeros((), dtype=dt)
        for k, v in value.items():
            names = dt.names or ()
            if k not in names:
                raise ValueError(
                    f"metadata has no field {k!r}; the declared fields are {', '.join(names)}"
                )
            out[k] = v
        return out.tobytes()
    if isinstance(value, (np.void, np.ndarray)) and value.dtype.names is not None:
        arr = np.asarray(value)
        if arr.shape != ():
            raise ValueError(f"metadata must be one record, not an array of shape {arr.shape}")
        if arr.dtype == dt:
            return arr.tobytes()
        return encode({n: arr[n] for n in arr.dtype.names or ()}, dt)
    raise TypeError(
        "meta must be a ctypes Structure instance, a NumPy structured scalar or a dict of "
        f"the declared fields, not {type(value).__name__}"
    )


def _build(
    cls_name: str, schema: SchemaTuple, pads: bool, pack: bool
) -> Optional[Type[ctypes.Structure]]:
    _, size, _, fields = schema
    spec: list = []
    pos = 0
    for fname, dtn, count, offset in sorted(fields, key=lambda f: f[3]):
        if offset < pos:
            return None  # overlapping fields: no Structure describes them
        if pads and offset > pos:
            spec.append((f"_pad{pos}", ctypes.c_uint8 * (offset - pos)))
        t: Any = _CTYPES[dtn]
        if count != 1:
            t = t * count
        spec.append((fname, t))
        pos = offset + ctypes.sizeof(t)
    if pads and size > pos:
        spec.append((f"_pad{pos}", ctypes.c_uint8 * (size - pos)))
    ns: dict = {"_fields_": spec, "__module__": "shmframe"}
    if pack:
        ns["_pack_"] = 1
        if sys.version_info >= (3, 14):
            ns["_layout_"] = "ms"
    cls = type(cls_name, (ctypes.Structure,), ns)
    if ctypes.sizeof(cls) != size:
        return None
    if any(getattr(cls, f[0]).offset != f[3] for f in fields):
        return None
    return cls


def ctypes_type(schema: SchemaTuple) -> Type[ctypes.Structure]:
    """A ctypes ``Structure`` with exactly the schema's field offsets and size."""
    name = schema[0] if schema[0].isidentifier() else "Meta"
    for pads, pack in ((False, False), (True, False), (True, True)):
        cls = _build(name, schema, pads, pack)
        if cls is not None:
            return cls
    raise TypeError(f"the channel's metadata schema {schema} cannot be expressed as a ctypes Structure")
