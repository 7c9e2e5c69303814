// A pure-Python wheel made on the spot (package isotiny, any version and body): the per-model
// environment tests install from a local wheel dir, so nothing needs the network.
import { execFileSync } from 'node:child_process';

const WHEEL_SCRIPT = `
import base64, hashlib, sys, zipfile
out, ver, body = sys.argv[1], sys.argv[2], sys.argv[3]
info = f"isotiny-{ver}.dist-info"
files = {
    "isotiny/__init__.py": body,
    f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: isotiny\\nVersion: {ver}\\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: isomodel-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
with zipfile.ZipFile(f"{out}/isotiny-{ver}-py3-none-any.whl", "w") as z:
    for path, text in files.items():
        data = text.encode()
        z.writestr(path, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    z.writestr(f"{info}/RECORD", "\\n".join(record) + "\\n")
`;

/** Writes `<dir>/isotiny-<version>-py3-none-any.whl` whose isotiny/__init__.py is `body`. */
export function makeWheel(
  python: string,
  dir: string,
  version: string,
  body = `VERSION = ${JSON.stringify(version)}\n`,
): void {
  execFileSync(python, ['-c', WHEEL_SCRIPT, dir, version, body]);
}
