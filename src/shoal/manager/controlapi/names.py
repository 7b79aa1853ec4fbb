"""Random names for services created without one (Docker names them like
"hungry_goldwasser": an adjective and a scientist's surname)."""

import secrets

ADJECTIVES = (
    "admiring adoring affectionate agitated amazing angry awesome blissful bold boring brave "
    "busy charming clever cool compassionate competent condescending confident cranky crazy "
    "dazzling determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic "
    "fervent festive flamboyant focused friendly frosty gallant gifted goofy gracious happy "
    "hardcore heuristic hopeful hungry infallible inspiring intelligent jolly jovial keen kind "
    "laughing loving lucid magical modest musing mystifying naughty nervous nice nifty "
    "nostalgic objective optimistic peaceful pedantic pensive practical priceless quirky quizzical "
    "relaxed reverent romantic sad serene sharp silly sleepy stoic strange stupefied suspicious "
    "sweet tender thirsty trusting unruffled upbeat vibrant vigilant vigorous wizardly wonderful "
    "xenodochial youthful zealous zen"
).split()

SURNAMES = (
    "agnesi albattani allen almeida antonelli archimedes ardinghelli aryabhata austin babbage "
    "banach bardeen bartik bassi beaver bell benz bhabha bhaskara black blackburn blackwell bohr "
    "booth borg bose bouman boyd brahmagupta brattain brown buck burnell cannon carson cartwright "
    "cerf chandrasekhar chaplygin chatelet chatterjee chebyshev clarke cohen colden cori cray "
    "curie darwin davinci dewdney dhawan diffie dijkstra dirac driscoll dubinsky easley edison "
    "einstein elbakyan elgamal elion ellis engelbart euclid euler faraday feistel fermat fermi "
    "feynman franklin gagarin galileo galois ganguly gates gauss germain goldberg goldstine "
    "goldwasser golick goodall gould greider grothendieck haibt hamilton haslett hawking hellman "
    "heisenberg hermann herschel hertz heyrovsky hodgkin hofstadter hoover hopper hugle hypatia "
    "jackson jang jennings jepsen johnson joliot jones kalam kapitsa kare keldysh keller kepler "
    "khayyam khorana kilby kirch knuth kowalevski lalande lamarr lamport leakey leavitt lederberg "
    "lehmann lewin lichterman liskov lovelace lumiere mahavira margulis matsumoto maxwell mayer "
    "mccarthy mcclintock mclaren mclean mcnulty meitner mendel mendeleev merkle mestorf mirzakhani "
    "montalcini moore morse moser murdock napier nash neumann newton nightingale nobel noether "
    "northcutt noyce panini pare pascal pasteur payne perlman pike poincare poitras proskuriakova "
    "ptolemy raman ramanujan rhodes ride ritchie robinson roentgen rosalind rubin saha sammet "
    "sanderson satoshi shamir shannon shaw shirley shockley shtern sinoussi snyder solomon spence "
    "stonebraker sutherland swanson swartz swirles taussig tesla tharp thompson torvalds tu turing "
    "varahamihira vaughan villani visvesvaraya volhard wescoff wilbur wiles williams williamson "
    "wilson wing wozniak wright wu yalow yonath zhukovsky"
).split()


def random_name() -> str:
    return f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
