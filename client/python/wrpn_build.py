"""The wrpn package's PEP 517 build backend: standard library only, so pip needs no index.

It generates the gRPC stubs (wrpn/v1/*_pb2.py, *_pb2_grpc.py) from the proto/ tree with protoc
and grpc_python_plugin into a temporary folder and zips them with the package's own modules. The
proto tree is $WRPN_PROTO_DIR, else ./proto (an sdist), else ../../proto (the repository);
protoc is $WRPN_PROTOC or `protoc`; the plugin $WRPN_GRPC_PYTHON_PLUGIN or `grpc_python_plugin`.
"""
import base64
import hashlib
import io
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
import zipfile

HERE = pathlib.Path(__file__).resolve().parent


def _project():
    with open(HERE / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _proto_dir():
    for d in (os.environ.get("WRPN_PROTO_DIR"), HERE / "proto", HERE.parent.parent / "proto"):
        if d and (pathlib.Path(d) / "wrpn" / "v1").is_dir():
            return pathlib.Path(d)
    raise RuntimeError("wrpn build: no proto tree (wrpn/v1/*.proto) in $WRPN_PROTO_DIR, "
                       f"{HERE / 'proto'} or {HERE.parent.parent / 'proto'}")


def _tool(env, name):
    found = shutil.which(os.environ.get(env, name))
    if not found:
        raise RuntimeError(f"wrpn build: {name} not found (Debian: apt-get install "
                           "protobuf-compiler protobuf-compiler-grpc; or set ${env})")
    return found


def _generate(out):
    proto = _proto_dir()
    files = sorted(str(p.relative_to(proto)) for p in (proto / "wrpn" / "v1").glob("*.proto"))
    cmd = [_tool("WRPN_PROTOC", "protoc"), f"-I{proto}", f"--python_out={out}",
           f"--grpc_python_out={out}",
           f"--plugin=protoc-gen-grpc_python={_tool('WRPN_GRPC_PYTHON_PLUGIN', 'grpc_python_plugin')}",
           *files]
    subprocess.run(cmd, check=True)
    (out / "wrpn" / "v1" / "__init__.py").write_text('"""Generated gRPC stubs (wrpn.v1)."""\n')


def _metadata(p):
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p['description']}", f"Requires-Python: {p['requires-python']}"]
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]
    for extra, deps in p.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {d}; extra == \"{extra}\"" for d in deps]
    return "\n".join(lines) + "\n"


def _dist_info(p):
    return f"{p['name']}-{p['version']}.dist-info"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    p = _project()
    d = pathlib.Path(metadata_directory) / _dist_info(p)
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(_metadata(p))
    return d.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p = _project()
    name = f"{p['name']}-{p['version']}-py3-none-any.whl"
    info = _dist_info(p)
    entries = {}
    with tempfile.TemporaryDirectory() as tmp:
        gen = pathlib.Path(tmp)
        _generate(gen)
        for src in sorted((HERE / "wrpn").glob("*.py")):
            entries[f"wrpn/{src.name}"] = src.read_bytes()
        for src in sorted((gen / "wrpn" / "v1").glob("*.py")):
            entries[f"wrpn/v1/{src.name}"] = src.read_bytes()
    entries[f"{info}/METADATA"] = _metadata(p).encode()
    entries[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: wrpn_build\n"
                                b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    entries[f"{info}/top_level.txt"] = b"wrpn\n"
    record = []
    for path, data in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    entries[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in entries.items():
            z.writestr(path, data)
    return name


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    base = f"{p['name']}-{p['version']}"
    name = f"{base}.tar.gz"
    with tarfile.open(pathlib.Path(sdist_directory) / name, "w:gz") as t:
        for f in ("pyproject.toml", "wrpn_build.py", "README.md"):
            if (HERE / f).exists():
                t.add(HERE / f, f"{base}/{f}")
        for src in sorted((HERE / "wrpn").glob("*.py")):
            t.add(src, f"{base}/wrpn/{src.name}")
        proto = _proto_dir()
        for src in sorted((proto / "wrpn" / "v1").glob("*.proto")):
            t.add(src, f"{base}/proto/wrpn/v1/{src.name}")
        pkg = tarfile.TarInfo(f"{base}/PKG-INFO")
        meta = _metadata(p).encode()
        pkg.size = len(meta)
        t.addfile(pkg, io.BytesIO(meta))
    return name
