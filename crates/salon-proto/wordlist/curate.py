# Curates Salon's safety-code word list (words.txt) from the EFF short word list 1
# (CC-BY 3.0, see README.md). Deterministic: rerunning reproduces words.txt exactly.
w = open("eff_short_wordlist_1.txt").read().split()
block = set("""aids arson bok coke curse ebay evil fetal gore grope hate islam kung mardi panty pagan
petri polio rabid roman santa slain thong trump vixen womb xerox yahoo widow flirt cult
sect bribe filth dowry morse folic prude slob wimp nerd geek july april wifi email ebook
tux yoyo mama dad mom nanny hers from said thus upon those only doing even come the
ion opt pep perm sax fax cod emu elk elm eel oat gig gag nag dab wad jab pry shy
bats aide boney creme gains stays taps eats props herbs limes gills twins ashes
elves skies boots pants jaws suds wages""".split())
w = [x for x in w if x not in block]
def d1(a, b):
    if a == b: return False
    if abs(len(a) - len(b)) > 1: return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    if len(a) > len(b): a, b = b, a
    return any(b[:i] + b[i+1:] == a for i in range(len(b)))
ws = set(w)
while len(ws) > 1024:
    nb = {x: sum(d1(x, y) for y in ws) for x in ws}
    worst = max(ws, key=lambda x: (nb[x], -len(x), x))
    if nb[worst] == 0: break
    ws.remove(worst)
left = sorted(ws)
# Still too many: drop the shortest words first (short words are the easiest to mishear).
while len(left) > 1024:
    victim = min(left, key=lambda x: (len(x), x))
    left.remove(victim)
print(len(left), sum(1 for a in left for b in left if a < b and d1(a, b)))
open('words.txt', 'w').write('\n'.join(left) + '\n')
