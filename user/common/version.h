/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * version.h — the one version of connbeat: both binaries print it
 * (--version) and connbeatd exports it (connbeat_build_info).
 */
#ifndef CONNBEAT_VERSION_H
#define CONNBEAT_VERSION_H

#define CONNBEAT_VERSION "0.2.0"

#endif /* CONNBEAT_VERSION_H */
