# Interleaved getrusage of commands (rusage-slice-20.txt): python3 ru.py ROUNDS name=command ...
# usage: ru.py ROUNDS name=cmd ...  -- CPU ms (user+sys) of each command via getrusage(RUSAGE_CHILDREN), interleaved
import resource, subprocess, sys, shlex
rounds = int(sys.argv[1]); specs = [a.split('=',1) for a in sys.argv[2:]]
def used():
    r = resource.getrusage(resource.RUSAGE_CHILDREN); return r.ru_utime + r.ru_stime, r.ru_nivcsw
for _ in range(rounds):
    for name, cmd in specs:
        b = used(); subprocess.run(shlex.split(cmd), stdout=subprocess.DEVNULL, check=True); a = used()
        print(name, '%.2f' % ((a[0]-b[0])*1e3), flush=True)
