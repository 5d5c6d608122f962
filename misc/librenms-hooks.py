#!/usr/bin/env python3
"""Lists, from a LibreNMS source tree, the OSes whose PHP replaces a poller
module's generic polling, and writes them as `src/modules/hooks.rs`.

A module goes to LibreNMS's PHP for such an OS (ironpoll polls the generic
path natively). What counts as a replacement, read from LibreNMS's code:

- an OS class (resolved as `OS::make` does: the class named after the OS,
  else the class of its group under `OS/Shared`, else the generic one)
  implementing a module's polling interface (`ProcessorPolling`,
  `MempoolsPolling`, `StoragePolling`, `OSPolling`, a wireless
  `*Polling`), or overriding a netstats polling method of the base class;
- an include file `includes/polling/sensors/<class>/<os or group>.inc.php`
  (sensors) or `includes/polling/ports/os/<os>.inc.php` (ports).

Usage: misc/librenms-hooks.py <librenms source dir> <os_detection dir> > src/modules/hooks.rs
"""

import os
import re
import sys

import yaml


def to_class(name):
    pre = name.replace('-', ' ').replace('_', ' ')
    cls = ''.join(w[:1].upper() + w[1:] for w in pre.lower().split(' '))
    numbers = ['Zero', 'One', 'Two', 'Three', 'Four', 'Five', 'Six', 'Seven', 'Eight', 'Nine']
    m = re.match(r'^(\d)(.)', cls)
    if m:
        cls = numbers[int(m.group(1))] + m.group(2).upper() + cls[2:]
    return cls


class PhpClass:
    def __init__(self, path):
        text = open(path, encoding='utf-8', errors='replace').read()
        self.uses = dict()
        for full, alias in re.findall(r'^use\s+([\w\\]+)(?:\s+as\s+(\w+))?;', text, re.M):
            self.uses[alias or full.split('\\')[-1]] = full
        m = re.search(r'\bclass\s+(\w+)(?:\s+extends\s+([\w\\]+))?(?:\s+implements\s+([\w\\,\s]+?))?\s*\{', text, re.S)
        self.name = m.group(1) if m else None
        self.parent = m.group(2) if m else None
        self.interfaces = [i.strip() for i in (m.group(3) or '').split(',') if i.strip()] if m else []
        self.methods = set(re.findall(r'function\s+(\w+)\s*\(', text))
        self.namespace = (re.search(r'^namespace\s+([\w\\]+);', text, re.M) or [None, ''])[1]

    def resolve(self, short):
        if short.startswith('\\'):
            return short[1:]
        head = short.split('\\')[0]
        if head in self.uses:
            return self.uses[head] + short[len(head):]
        return self.namespace + '\\' + short


def main():
    src, defs = sys.argv[1], sys.argv[2]
    classes = {}
    for root, _, files in os.walk(os.path.join(src, 'LibreNMS/OS')):
        for f in files:
            if f.endswith('.php'):
                c = PhpClass(os.path.join(root, f))
                if c.name:
                    classes[c.namespace + '\\' + c.name] = c
    base = PhpClass(os.path.join(src, 'LibreNMS/OS.php'))
    classes['LibreNMS\\OS'] = base

    def lineage(fqcn):
        seen = []
        while fqcn in classes and fqcn not in seen:
            seen.append(fqcn)
            c = classes[fqcn]
            fqcn = c.resolve(c.parent) if c.parent else None
        return seen

    def interfaces(fqcn):
        out = set()
        for name in lineage(fqcn):
            c = classes[name]
            out |= {c.resolve(i).split('\\')[-1] for i in c.interfaces}
        return out

    def own_methods(fqcn):
        out = set()
        for name in lineage(fqcn):
            if name != 'LibreNMS\\OS':
                out |= classes[name].methods
        return out

    oses = {}
    for f in sorted(os.listdir(defs)):
        if f.endswith('.yaml'):
            d = yaml.safe_load(open(os.path.join(defs, f))) or {}
            oses[d.get('os') or f[:-5]] = d.get('group')

    def os_class(os_name, group):
        c = 'LibreNMS\\OS\\' + to_class(os_name)
        if c in classes:
            return c
        if group:
            c = 'LibreNMS\\OS\\Shared\\' + to_class(group)
            if c in classes:
                return c
        return 'LibreNMS\\OS\\Generic'

    netstats = {'pollIcmpNetstats', 'pollIpNetstats', 'pollIpForwardNetstats',
                'pollSnmpNetstats', 'pollTcpNetstats', 'pollUdpNetstats'}
    hooks = {m: set() for m in ['os', 'processors', 'mempools', 'storage', 'netstats',
                                'sensors', 'wireless', 'ports']}
    sensor_files = set()
    sdir = os.path.join(src, 'includes/polling/sensors')
    for cls in os.listdir(sdir):
        if os.path.isdir(os.path.join(sdir, cls)):
            for f in os.listdir(os.path.join(sdir, cls)):
                sensor_files.add(f[:-len('.inc.php')])
    port_files = {f[:-len('.inc.php')] for f in os.listdir(os.path.join(src, 'includes/polling/ports/os'))}

    for os_name, group in oses.items():
        cls = os_class(os_name, group)
        ifaces = interfaces(cls)
        if 'OSPolling' in ifaces:
            hooks['os'].add(os_name)
        if 'ProcessorPolling' in ifaces:
            hooks['processors'].add(os_name)
        if 'MempoolsPolling' in ifaces:
            hooks['mempools'].add(os_name)
        if 'StoragePolling' in ifaces:
            hooks['storage'].add(os_name)
        if any(i.startswith('Wireless') and i.endswith('Polling') for i in ifaces):
            hooks['wireless'].add(os_name)
        if own_methods(cls) & netstats:
            hooks['netstats'].add(os_name)
        if os_name in sensor_files or (group and group in sensor_files):
            hooks['sensors'].add(os_name)
        if os_name in port_files:
            hooks['ports'].add(os_name)

    print('//! The OSes whose LibreNMS PHP replaces a module\'s generic polling: the')
    print('//! module goes to LibreNMS\'s PHP for them. @generated by')
    print('//! `misc/librenms-hooks.py` from LibreNMS\'s source (OS classes and their')
    print('//! polling interfaces, `includes/polling/sensors/*/<os>.inc.php`,')
    print('//! `includes/polling/ports/os/<os>.inc.php`); do not edit.')
    print()
    print('#[rustfmt::skip]')
    print('pub static PHP_HOOKS: &[(&str, &[&str])] = &[')
    for module in sorted(hooks):
        names = ', '.join('"%s"' % n for n in sorted(hooks[module]))
        print('    ("%s", &[%s]),' % (module, names))
    print('];')


if __name__ == '__main__':
    main()
