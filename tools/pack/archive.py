"""Deterministic zip files of a staged tree, and their faithful unpacking
(zipfile.extract drops the file modes Lambda keeps)."""
import os
import stat
import zipfile

FIXED_TIME = (2024, 1, 1, 0, 0, 0)   # the same bytes for the same inputs


def add_file(zf, arcname, path):
    info = zipfile.ZipInfo(arcname, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    executable = os.stat(path).st_mode & 0o111
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    with open(path, "rb") as f:
        zf.writestr(info, f.read(), compresslevel=9)


def write_tree(out, root, prefix=""):
    """Zip every file under root (sorted), atomically into out."""
    partial = out + ".part"
    with zipfile.ZipFile(partial, "w") as zf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                add_file(zf, prefix + os.path.relpath(path, root), path)
    os.replace(partial, out)


def unpack(zip_path, dest):
    """Extract with each file's mode, as Lambda does; returns the names."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(os.path.join(dest, info.filename), mode)
        return zf.namelist()
