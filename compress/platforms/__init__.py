"""App bundles, one module per platform (OUT/bundle/<platform>/ and <platform>.zip).

Adding a platform is one module with a `PLATFORM` (compress.platforms.base.Platform) and one line in `_registry`;
the bundle stage builds them in the registry's order (a platform that ships another's files comes after it).
"""

from __future__ import annotations

from compress.platforms.base import Platform


def _registry() -> list[Platform]:
    from compress.platforms import android_executorch, android_litert, android_ort, ios_litert, ios_ort, pi, web

    return [pi.PLATFORM, android_litert.PLATFORM, ios_litert.PLATFORM, android_ort.PLATFORM, ios_ort.PLATFORM,
            web.PLATFORM, android_executorch.PLATFORM]


def platforms() -> list[Platform]:
    return _registry()
