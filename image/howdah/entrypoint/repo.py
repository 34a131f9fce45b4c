"""Object-storage repositories for pgBackRest from Spilo's variables.  Pure: env in, options out.

``repository(env, scope)`` reads the cluster's own repository; ``repository(env, scope,
prefix="CLONE_")`` and ``prefix="STANDBY_"`` read the repository of the cluster a clone restores
from or a standby follows (its own bucket and credentials; endpoint, region and CA fall back to
the unprefixed variables).  The result is a list of pgBackRest ``repo1-*`` options (written
without the ``repo1-`` prefix) plus the INFO/WARNING lines the entrypoint prints, so a
configuration is never silently changed.

S3 (``WAL_S3_BUCKET``, or WAL-E/WAL-G's ``WALE_S3_PREFIX``/``WALG_S3_PREFIX=s3://bucket/path``):

* ``AWS_ENDPOINT``: ``https://host:port``, ``host:port`` or ``host`` (port 443); WAL-E's
  ``https+path://`` also selects path style.  ``http://`` is refused: pgBackRest speaks only
  TLS to S3 (put a TLS proxy in front of a plain-HTTP server).  Default
  ``s3.<AWS_REGION>.amazonaws.com``.
* ``AWS_S3_FORCE_PATH_STYLE``: path-style URIs; default on when a custom endpoint is set
  (as Spilo), off for AWS.
* ``AWS_REGION`` (default: from an ``s3.<region>.amazonaws.com`` endpoint, else us-east-1).
* ``AWS_CA_BUNDLE`` (or WAL-G's ``WALG_S3_CA_CERT_FILE``): the PEM file of the CA that signed
  the endpoint's certificate; ``AWS_S3_VERIFY_TLS=false`` switches verification off (WARNING).
* credentials: ``AWS_ACCESS_KEY_ID``+``AWS_SECRET_ACCESS_KEY`` (+``AWS_SESSION_TOKEN``); else
  ``AWS_ROLE_ARN``+``AWS_WEB_IDENTITY_TOKEN_FILE`` (EKS IRSA: pgBackRest reads both from the
  environment); else the instance profile (key type ``auto``).
* server-side encryption: ``AWS_S3_SSE`` (or ``WALG_S3_SSE``) ``aws:kms`` with
  ``AWS_S3_SSE_KMS_ID`` (or ``WALG_S3_SSE_KMS_ID``); ``AES256`` is the bucket's default
  encryption, which needs no header.
* the path: the prefix's path, else ``/<WAL_BUCKET_SCOPE_PREFIX><scope><WAL_BUCKET_SCOPE_SUFFIX>``.

GCS: ``WAL_GS_BUCKET`` (or ``WALE_GS_PREFIX``/``WALG_GS_PREFIX``) with
``GOOGLE_APPLICATION_CREDENTIALS`` (a service-account key file; without it the instance's
service account).  Azure: ``WALG_AZ_PREFIX=azure://container/path`` with
``AZURE_STORAGE_ACCOUNT`` and ``AZURE_STORAGE_ACCESS_KEY`` or ``AZURE_STORAGE_SAS_TOKEN``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import spilo, values
from .errors import EnvError
from .values import Env, get


@dataclass(frozen=True)
class Repo:
    kind: str  # s3, gcs, azure or posix
    path: str
    options: tuple[tuple[str, str], ...] = ()  # repo1-* options without the prefix, path included
    notes: tuple[str, ...] = field(default=(), compare=False)  # lines for the log

    def option(self, name: str) -> str:
        return dict(self.options).get(name, "")

    def lines(self, number: int = 1) -> list[str]:
        return [f"repo{number}-{key}={value}" for key, value in self.options]


def _split_url(name: str, raw: str, scheme: str) -> tuple[str, str]:
    """'s3://bucket/some/path' -> ('bucket', '/some/path')."""
    parts = urlsplit(raw)
    if parts.scheme != scheme or not parts.netloc:
        raise EnvError(name, f"{raw!r} is not a {scheme}://bucket/path URL", f"write it as {scheme}://bucket/path")
    return parts.netloc, "/" + parts.path.strip("/")


def _endpoint(name: str, raw: str) -> tuple[str, int, bool]:
    """AWS_ENDPOINT -> (host, port, path style asked for by the scheme)."""
    text, path_style = raw.strip(), False
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        if scheme in ("http", "http+path"):
            raise EnvError(name, f"{raw!r} is plain HTTP, and pgBackRest reaches S3 only over HTTPS",
                           "use the server's https:// endpoint (or a TLS proxy in front of it) and AWS_CA_BUNDLE "
                           "for a private CA")
        if scheme not in ("https", "https+path"):
            raise EnvError(name, f"{raw!r} has the unknown scheme {scheme!r}", "write it as https://host:port")
        path_style = scheme == "https+path"
    text = text.split("/", 1)[0]
    host, _, port = values.host_port(name, text, 443).rpartition(":")
    return host, int(port), path_style


class _Vars:
    """Prefixed variables; shared settings fall back to the unprefixed ones."""

    def __init__(self, env: Env, prefix: str) -> None:
        self.env, self.prefix = env, prefix

    def own(self, name: str) -> tuple[str, str]:
        return self.prefix + name, get(self.env, self.prefix + name)

    def shared(self, name: str) -> tuple[str, str]:
        var, value = self.own(name)
        if not value and self.prefix:
            var, value = name, get(self.env, name)
        return var, value


def _s3(env: Env, v: _Vars, bucket: str, path: str, notes: list[str]) -> Repo:
    opts: list[tuple[str, str]] = [("type", "s3"), ("path", path), ("s3-bucket", bucket)]
    region_var, region = v.shared("AWS_REGION")
    endpoint_var, endpoint = v.shared("AWS_ENDPOINT")
    if not endpoint and not v.prefix:
        wale_endpoint = get(env, "WALE_S3_ENDPOINT")
        if wale_endpoint:
            endpoint_var, endpoint = "WALE_S3_ENDPOINT", wale_endpoint
            notes.append(f"INFO: WALE_S3_ENDPOINT {wale_endpoint} is the pgBackRest S3 endpoint")
    custom, scheme_path = False, False
    if endpoint:
        host, port, scheme_path = _endpoint(endpoint_var, endpoint)
        custom = not host.endswith(".amazonaws.com")
        if not region and not custom and host.startswith("s3.") and host.count(".") == 3:
            region = host.split(".")[1]
    else:
        host, port = "", 443
    region = region or "us-east-1"
    if not host:
        host = f"s3.{region}.amazonaws.com"
    del region_var
    style_var, style_raw = v.shared("AWS_S3_FORCE_PATH_STYLE")
    path_style = values.boolean({style_var: style_raw}, style_var, custom or scheme_path) if style_raw else (
        custom or scheme_path)
    opts += [("s3-endpoint", host), ("s3-region", region), ("s3-uri-style", "path" if path_style else "host")]
    if port != 443:
        opts.append(("storage-port", str(port)))

    ca_var, ca = v.shared("AWS_CA_BUNDLE")
    if not ca and not v.prefix and get(env, "WALG_S3_CA_CERT_FILE"):
        ca = get(env, "WALG_S3_CA_CERT_FILE")
        notes.append("INFO: WALG_S3_CA_CERT_FILE is the pgBackRest repository CA file")
    if ca:
        if not ca.startswith("/"):
            raise EnvError(ca_var, f"{ca!r} is not an absolute path", "give the path of a PEM file in the container")
        opts.append(("storage-ca-file", ca))
    verify_var, verify_raw = v.shared("AWS_S3_VERIFY_TLS")
    if verify_raw and not values.boolean({verify_var: verify_raw}, verify_var, True):
        opts.append(("storage-verify-tls", "n"))
        notes.append(f"WARNING: {verify_var}=false: the S3 server's certificate is not verified")

    key_var, key = v.own("AWS_ACCESS_KEY_ID")
    secret_var, secret = v.own("AWS_SECRET_ACCESS_KEY")
    token_var, token = v.own("AWS_SESSION_TOKEN")
    role_var, role = v.own("AWS_ROLE_ARN")
    if v.prefix and not (key or secret or role):  # no credentials of its own: the cluster's
        key_var, key = "AWS_ACCESS_KEY_ID", get(env, "AWS_ACCESS_KEY_ID")
        secret_var, secret = "AWS_SECRET_ACCESS_KEY", get(env, "AWS_SECRET_ACCESS_KEY")
        token_var, token = "AWS_SESSION_TOKEN", get(env, "AWS_SESSION_TOKEN")
        role_var, role = "AWS_ROLE_ARN", get(env, "AWS_ROLE_ARN")
    if key or secret:
        if not key:
            raise EnvError(key_var, f"not set while {secret_var} is", "set both or neither")
        if not secret:
            raise EnvError(secret_var, f"not set while {key_var} is", "set both or neither")
        opts += [("s3-key-type", "shared"), ("s3-key", key), ("s3-key-secret", secret)]
        if token:
            opts.append(("s3-token", token))
    elif role:
        if role_var != "AWS_ROLE_ARN":
            raise EnvError(role_var, "web identity credentials come from the container's AWS_ROLE_ARN and "
                           "AWS_WEB_IDENTITY_TOKEN_FILE only", f"unset {role_var} (or give {v.prefix}AWS_ACCESS_KEY_ID)")
        if not get(env, "AWS_WEB_IDENTITY_TOKEN_FILE"):
            raise EnvError("AWS_WEB_IDENTITY_TOKEN_FILE", "not set while AWS_ROLE_ARN is",
                           "set it to the projected service-account token file (EKS sets both)")
        opts.append(("s3-key-type", "web-id"))
        notes.append(f"INFO: {v.prefix}S3 credentials: web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)")
    else:
        opts.append(("s3-key-type", "auto"))
        notes.append(f"INFO: {v.prefix}S3 credentials: the instance profile (no AWS_ACCESS_KEY_ID or AWS_ROLE_ARN)")

    sse_var, sse = v.own("AWS_S3_SSE")
    kms_var, kms = v.own("AWS_S3_SSE_KMS_ID")
    if not v.prefix:
        if not sse and get(env, "WALG_S3_SSE"):
            sse_var, sse = "WALG_S3_SSE", get(env, "WALG_S3_SSE")
        if not kms and get(env, "WALG_S3_SSE_KMS_ID"):
            kms_var, kms = "WALG_S3_SSE_KMS_ID", get(env, "WALG_S3_SSE_KMS_ID")
    if kms and not sse:
        sse = "aws:kms"
    if sse == "aws:kms":
        if not kms:
            raise EnvError(kms_var, f"not set while {sse_var} is aws:kms", "set it to the KMS key id or ARN")
        opts.append(("s3-kms-key-id", kms))
    elif sse.upper() == "AES256":
        notes.append(f"INFO: {sse_var}=AES256: objects get the bucket's default encryption (SSE-S3)")
    elif sse:
        raise EnvError(sse_var, f"{sse!r} is not a server-side encryption pgBackRest can request",
                       "use aws:kms (with AWS_S3_SSE_KMS_ID) or AES256")
    return Repo("s3", path, tuple(opts), tuple(notes))


def _gcs(env: Env, v: _Vars, bucket: str, path: str, notes: list[str]) -> Repo:
    opts = [("type", "gcs"), ("path", path), ("gcs-bucket", bucket)]
    key_var, key = v.shared("GOOGLE_APPLICATION_CREDENTIALS")
    if key:
        if not key.startswith("/"):
            raise EnvError(key_var, f"{key!r} is not an absolute path", "give the path of the service-account key file")
        opts += [("gcs-key-type", "service"), ("gcs-key", key)]
    else:
        opts.append(("gcs-key-type", "auto"))
        notes.append(f"INFO: {v.prefix}GCS credentials: the instance's service account")
    _, endpoint = v.shared("GCS_ENDPOINT")
    if endpoint:
        host, port, _ = _endpoint(v.prefix + "GCS_ENDPOINT", endpoint)
        opts.append(("gcs-endpoint", host if port == 443 else f"{host}:{port}"))
    return Repo("gcs", path, tuple(opts), tuple(notes))


def _azure(env: Env, v: _Vars, container: str, path: str, notes: list[str]) -> Repo:
    account_var, account = v.shared("AZURE_STORAGE_ACCOUNT")
    if not account:
        raise EnvError(account_var, "not set while an Azure repository is", "set it to the storage account name")
    opts = [("type", "azure"), ("path", path), ("azure-container", container), ("azure-account", account)]
    _, key = v.shared("AZURE_STORAGE_ACCESS_KEY")
    _, sas = v.shared("AZURE_STORAGE_SAS_TOKEN")
    if key:
        opts += [("azure-key-type", "shared"), ("azure-key", key)]
    elif sas:
        opts += [("azure-key-type", "sas"), ("azure-key", sas.lstrip("?"))]
    else:
        what = "AZURE_CLIENT_ID (a service principal)" if get(env, "AZURE_CLIENT_ID") else "no key"
        raise EnvError(v.prefix + "AZURE_STORAGE_ACCESS_KEY", f"not set ({what}); pgBackRest authenticates to Azure "
                       "only with a shared key or a SAS token", "set AZURE_STORAGE_ACCESS_KEY or AZURE_STORAGE_SAS_TOKEN")
    return Repo("azure", path, tuple(opts), tuple(notes))


def _bucket(env: Env, prefix: str, cloud: str, default_path: str) -> tuple[str, str, str, str] | None:
    """The first of WAL_<cloud>_BUCKET (the bucket; default_path), WALE_<cloud>_PREFIX and
    WALG_<cloud>_PREFIX (<scheme>://bucket/path) that is set: (variable, value, bucket, path)."""
    for var in (f"{prefix}WAL_{cloud}_BUCKET", f"{prefix}WALE_{cloud}_PREFIX", f"{prefix}WALG_{cloud}_PREFIX"):
        raw = get(env, var)
        if raw:
            bucket, path = (raw, default_path) if var.endswith("_BUCKET") else _split_url(var, raw, cloud.lower())
            return var, raw, bucket, path
    return None


def repository(env: Env, scope: str, prefix: str = "") -> Repo | None:
    """The object-storage repository named by the variables with `prefix`, or None."""
    v, notes = _Vars(env, prefix), []
    _, scope_prefix = v.shared("WAL_BUCKET_SCOPE_PREFIX")
    _, scope_suffix = v.shared("WAL_BUCKET_SCOPE_SUFFIX")
    default_path = f"/{scope_prefix}{scope}{scope_suffix}"
    found = _bucket(env, prefix, "S3", default_path)
    if found:
        var, raw, bucket, path = found
        if not var.endswith("_BUCKET"):
            notes.append(f"INFO: {var} {raw} is the pgBackRest S3 repository (bucket {bucket}, path {path}); "
                         "pgBackRest keeps its own layout there, WAL-E/WAL-G backups already in it are not read")
        if "/" in bucket or not bucket:
            raise EnvError(var, f"{raw!r} is not a bucket name", "give the bucket name only (no s3:// or path)")
        return _s3(env, v, bucket, path, notes)
    found = _bucket(env, prefix, "GS", default_path)
    if found:
        var, raw, bucket, path = found
        if not var.endswith("_BUCKET"):
            notes.append(f"INFO: {var} {raw} is the pgBackRest GCS repository (bucket {bucket}, path {path})")
        return _gcs(env, v, bucket, path, notes)
    raw = get(env, prefix + "WALG_AZ_PREFIX")
    if raw:
        container, path = _split_url(prefix + "WALG_AZ_PREFIX", raw, "azure")
        notes.append(f"INFO: {prefix}WALG_AZ_PREFIX {raw} is the pgBackRest Azure repository "
                     f"(container {container}, path {path})")
        return _azure(env, v, container, path, notes)
    return None


# WAL-E / WAL-G settings that have no pgBackRest meaning: refused (archiving would silently
# differ from what the user asked for) or noted (tuning that pgBackRest does its own way).
# Swift and SSH repositories are warned about by spilo.notices (one line each).
REFUSED = {
    "WALG_LIBSODIUM_KEY": "WAL-G encryption keys do not apply to pgBackRest; unset it (use S3 SSE: AWS_S3_SSE)",
    "WALG_LIBSODIUM_KEY_PATH": "WAL-G encryption keys do not apply to pgBackRest; unset it (use S3 SSE: AWS_S3_SSE)",
    "WALG_PGP_KEY": "WAL-G encryption keys do not apply to pgBackRest; unset it (use S3 SSE: AWS_S3_SSE)",
    "WALG_PGP_KEY_PATH": "WAL-G encryption keys do not apply to pgBackRest; unset it (use S3 SSE: AWS_S3_SSE)",
    "WALG_CSE_KMS_ID": "WAL-G client-side encryption does not apply to pgBackRest; unset it (use AWS_S3_SSE_KMS_ID)",
}


def wal_tool_notes(env: Env) -> list[str]:
    """INFO lines for WAL-E/WAL-G variables that pgBackRest replaces; EnvError for the refused."""
    for var, fix in REFUSED.items():
        if get(env, var):
            raise EnvError(var, "is a WAL-E/WAL-G setting the image's pgBackRest cannot honour", fix)
    notes = []
    for var in ("USE_WALG_BACKUP", "USE_WALG_RESTORE"):
        if get(env, var):
            notes.append(f"INFO: {var} ignored: pgBackRest takes the backups and restores them")
    if get(env, "WALG_FILE_PREFIX") and not get(env, "PGBACKREST_REPO_PATH"):
        raise EnvError("WALG_FILE_PREFIX", "is WAL-G's file repository", "set PGBACKREST=true and "
                       "PGBACKREST_REPO_PATH to that directory instead")
    tuning = sorted(k for k in env if (k.startswith("WALG_") or k.startswith("WALE_")) and get(env, k) and k not in {
        "WALG_S3_PREFIX", "WALE_S3_PREFIX", "WALG_GS_PREFIX", "WALE_GS_PREFIX", "WALG_AZ_PREFIX", "WALE_S3_ENDPOINT",
        "WALG_S3_CA_CERT_FILE", "WALG_S3_SSE", "WALG_S3_SSE_KMS_ID", "WALG_FILE_PREFIX",
        "WALE_BACKUP_THRESHOLD_MEGABYTES", "WALE_BACKUP_THRESHOLD_PERCENTAGE", *spilo.UNSUPPORTED})
    if tuning:
        notes.append("INFO: " + ", ".join(tuning) + " ignored: WAL-E/WAL-G tuning; pgBackRest's own "
                     "settings apply")
    return notes
