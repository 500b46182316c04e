"""Java and the Maven Central jars the Kafka broker and Kafka Connect run from."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from bankcdc_stack.errors import MissingDependencyError, ServiceFailedError
from bankcdc_stack.settings import StackSettings

TEMPLATES = Path(__file__).parent / "templates"


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise MissingDependencyError(
            "java not found: install a JRE 17+ with `sudo apt-get install -y openjdk-17-jre-headless` "
            "(./stack does this for you) or set JAVA_HOME"
        )
    return found


def ensure_jars(settings: StackSettings) -> None:
    """Fetch Kafka, Connect and Debezium from Maven Central on first use, and again whenever
    jvm/pom.xml changes (the digest of the pom the jars came from is kept beside them)."""
    pom = settings.repo_root / "jvm" / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = settings.jvm_lib / ".pom.sha256"
    if marker.exists() and marker.read_text().strip() == digest and any(
        (settings.jvm_lib / "debezium").glob("*/debezium-connector-postgres-*.jar")
    ):
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise MissingDependencyError(
            "Kafka/Debezium jars are missing and Maven is not installed: "
            "`sudo apt-get install -y maven` then `mvn -q -f jvm/pom.xml package` (./stack does both)"
        )
    result = subprocess.run([mvn, "-q", "-B", "-f", str(pom), "package"], capture_output=True, text=True)
    if result.returncode != 0:
        raise ServiceFailedError(f"fetching jars with Maven failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    marker.write_text(digest + "\n")


def java_argv(settings: StackSettings, heap: str, main_class: str, *args: str,
              properties: dict[str, object] | None = None) -> list[str]:
    """The java command line of one of the stack's JVMs; `properties` become -D system properties."""
    return [
        java_binary(),
        f"-Xms{heap}", f"-Xmx{heap}",
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={TEMPLATES / 'log4j2.properties'}",
        *(f"-D{key}={value}" for key, value in (properties or {}).items()),
        "-cp", str(settings.jvm_lib / "kafka" / "*"),
        main_class, *args,
    ]


def write_properties(path: Path, values: dict[str, object], private: bool = False) -> None:
    """A Java properties file; `private` ones (holding a password) readable by their owner only."""
    text = "".join(f"{key}={value}\n" for key, value in values.items())
    if private:
        write_private(path, text)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600 from its creation on)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)
