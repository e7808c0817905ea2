"""Named things a function's string parameter can hold, for the offline teacher.

Technical catalogs (the kind BFCL collects) take many strings that are neither a message nor
a place: a player, a company, a species, a chemical, a book, a formula, a file. A parameter
whose name or description names such a thing gets realistic values of it, written the way
people mention them ("the rating of Magnus Carlsen", "a flute from Yamaha"), not as
"player name: north wing". Plain data, and the one function that picks a category.
"""

from __future__ import annotations

import re

# (category, words that name it in a parameter's name or description, values, clauses).
# Clauses: {v} the value, {pw} the parameter's name in words, {what} the category's noun.
CATEGORIES: tuple[tuple[str, frozenset[str], tuple[str, ...], tuple[str, ...]], ...] = (
    ("person", frozenset("""player athlete author artist scientist actor actress composer painter president
        singer musician director inventor writer poet coach leader king queen philosopher character celebrity
        employee customer patient lawyer candidate politician discoverer sculptor architect chef manager
        driver pilot founder ceo""".split()),
     ("Magnus Carlsen", "LeBron James", "Marie Curie", "Isaac Newton", "Taylor Swift", "Serena Williams",
      "Albert Einstein", "Leonardo da Vinci", "Lionel Messi", "Jane Austen", "Pablo Picasso", "Ada Lovelace",
      "Michael Jordan", "Frida Kahlo", "Nikola Tesla", "Ludwig van Beethoven", "Cristiano Ronaldo", "Tom Brady",
      "Vincent van Gogh", "Charles Darwin", "Roger Federer", "Maya Angelou", "Stephen King", "Kobe Bryant",
      "Priya Raman", "Daniel Okafor", "Elena Rossi", "Kenji Tanaka", "Sofia Garcia", "Liam Murphy"),
     ("of {v}", "for {v}", "by {v}", "{pw} {v}", "with {pw} {v}")),
    ("team", frozenset("team club franchise squad".split()),
     ("Los Angeles Lakers", "Real Madrid", "Manchester United", "Chicago Bulls", "Golden State Warriors",
      "New York Yankees", "Boston Celtics", "FC Barcelona", "Liverpool", "Bayern Munich", "Dallas Cowboys",
      "Toronto Raptors", "Green Bay Packers", "Juventus", "Miami Heat", "Arsenal", "Boston Red Sox"),
     ("of the {v}", "for the {v}", "of {v}", "for {v}", "{pw} {v}")),
    ("company", frozenset("""company brand manufacturer entity firm corporation organization business store bank
        vendor supplier provider publisher maker retailer""".split()),
     ("Apple", "Microsoft", "Tesla", "Google", "Amazon", "Yamaha", "Toyota", "Nike", "Samsung", "Walmart",
      "Netflix", "IBM", "Sony", "Boeing", "Acme Corp", "Starbucks", "Pfizer", "Intel", "Ford", "Adidas",
      "Goldman Sachs", "Nvidia", "Home Depot", "Target"),
     ("from {v}", "by {v}", "of {v}", "for {v}", "at {v}", "{pw} {v}")),
    ("species", frozenset("species animal plant organism bird tree fish insect breed creature mammal".split()),
     ("African elephant", "gray wolf", "monarch butterfly", "Bengal tiger", "bald eagle", "oak tree",
      "honey bee", "blue whale", "red fox", "giant panda", "Homo sapiens", "sea turtle", "snow leopard",
      "koala", "golden retriever", "sunflower", "salmon", "emperor penguin"),
     ("of {v}", "for the {v}", "for {v}", "of the {v}", "{pw} {v}")),
    ("substance", frozenset("""element chemical substance compound gas molecule material metal mineral liquid
        fluid drug medication medicine""".split()),
     ("hydrogen", "carbon dioxide", "water", "sodium chloride", "iron", "oxygen", "helium", "glucose", "ethanol",
      "copper", "nitrogen", "methane", "aspirin", "ibuprofen", "gold", "aluminum", "air", "benzene", "argon"),
     ("of {v}", "for {v}", "of the {v}", "{pw} {v}", "with {pw} {v}")),
    ("work", frozenset("""book movie film song painting novel album artwork sculpture play show series poem opera
        musical symphony""".split()),
     ("The Great Gatsby", "Inception", "Starry Night", "Hamlet", "Interstellar", "The Godfather", "Mona Lisa",
      "Pride and Prejudice", "Thriller", "The Last Supper", "Moby Dick", "Casablanca", "Abbey Road",
      "The Thinker", "Romeo and Juliet", "Breaking Bad", "Bohemian Rhapsody", "War and Peace", "Guernica"),
     ("'{v}'", "{v}", "titled {v}", "called {v}", "{pw} {v}")),
    ("country", frozenset("country nation".split()),
     ("Germany", "Brazil", "Japan", "Canada", "India", "France", "Australia", "Kenya", "Mexico", "Italy",
      "Egypt", "South Korea", "Spain", "Argentina", "Nigeria", "Sweden", "the United States", "China"),
     ("in {v}", "for {v}", "of {v}", "{pw} {v}")),
    ("region", frozenset("state county province region district territory continent".split()),
     ("California", "Texas", "Ontario", "Bavaria", "Queensland", "Santa Clara County", "Cook County",
      "New York", "Florida", "Europe", "Asia", "British Columbia", "Tuscany", "Scotland", "Washington"),
     ("in {v}", "for {v}", "of {v}", "{pw} {v}")),
    ("event", frozenset("event war battle era period dynasty empire civilization revolution".split()),
     ("World War II", "the French Revolution", "the Renaissance", "the Cold War", "the Industrial Revolution",
      "the Roman Empire", "the Ming dynasty", "the American Civil War", "the Moon landing", "the Great Depression",
      "the Battle of Hastings", "the Bronze Age", "the Olympics"),
     ("of {v}", "during {v}", "about {v}", "for {v}", "{pw} {v}")),
    ("condition", frozenset("disease condition symptom illness disorder infection".split()),
     ("diabetes", "influenza", "asthma", "malaria", "hypertension", "migraine", "arthritis", "COVID-19"),
     ("for {v}", "of {v}", "with {v}", "{pw} {v}")),
    ("biology", frozenset("gene protein dna rna enzyme cell hormone snp mutation".split()),
     ("BRCA1", "TP53", "insulin", "hemoglobin", "APOE", "CFTR", "keratin", "collagen", "rs6034464", "MTHFR"),
     ("of {v}", "for {v}", "{pw} {v}", "with {pw} {v}")),
    ("sport", frozenset("sport league tournament competition game".split()),
     ("NBA", "Premier League", "NFL", "La Liga", "MLB", "tennis", "chess", "basketball", "the World Cup",
      "Wimbledon", "Formula 1", "cricket", "Serie A", "golf"),
     ("in {v}", "for {v}", "of {v}", "{pw} {v}")),
    ("instrument", frozenset("instrument".split()),
     ("piano", "violin", "guitar", "flute", "cello", "drums", "saxophone", "trumpet", "harp", "clarinet"),
     ("for the {v}", "of the {v}", "a {v}", "{pw} {v}")),
    ("belief", frozenset("religion faith belief philosophy ideology".split()),
     ("Buddhism", "Christianity", "Islam", "Hinduism", "Judaism", "Stoicism", "Taoism", "Sikhism"),
     ("of {v}", "about {v}", "on {v}", "{pw} {v}")),
    ("formula", frozenset("function expression equation formula polynomial integrand".split()),
     ("3x^2 + 2x - 1", "x^2", "sin(x)", "2x + 3", "x^3 - 4x", "e^x", "log(x)", "x**2 + 5", "4x^3 + 2x",
      "cos(x) + x", "5x - 7", "x^2 - 9"),
     ("{v}", "of {v}", "f(x) = {v}", "of the function {v}", "{pw} {v}")),
    ("path", frozenset("path file filename dataset directory folder csv".split()),
     ("data/sales.csv", "C:/data/cars.csv", "/home/user/report.txt", "images/cat.png", "~/data/results.json",
      "dataset.csv", "/var/log/app.log", "input.xlsx", "data/train.csv", "docs/notes.md"),
     ("in {v}", "from {v}", "at {v}", "{pw} {v}")),
    ("variable", frozenset("variable variables column columns field fields feature features predictor predictors attribute metric".split()),
     ("age", "income", "price", "height", "engine_size", "temperature", "weight", "salary", "rating",
      "population", "revenue", "score", "fuel_economy", "distance", "humidity"),
     ("{v}", "{pw} {v}", "using {v}", "with {pw} {v}")),
    ("food", frozenset("food ingredient ingredients dish recipe cuisine diet".split()),
     ("avocado", "pasta", "chicken", "salmon", "tofu", "quinoa", "Thai", "Italian", "vegan", "gluten-free",
      "Mexican", "spinach", "lasagna", "brownies"),
     ("for {v}", "with {v}", "of {v}", "{pw} {v}")),
    ("landmark", frozenset("""museum park landmark monument building venue hotel restaurant university school
        library hospital airport stadium mountain river lake""".split()),
     ("the Louvre", "Yellowstone National Park", "Central Park", "the Eiffel Tower", "Harvard University",
      "the Metropolitan Museum of Art", "Mount Everest", "the Grand Canyon", "Hilton", "the British Museum",
      "Lake Tahoe", "the Amazon River", "Wembley Stadium", "JFK Airport"),
     ("of {v}", "at {v}", "for {v}", "in {v}", "{pw} {v}")),
)
_BY_NAME = {category: (values, clauses) for category, _, values, clauses in CATEGORIES}
_WORD = re.compile(r"[a-z]+")


def category(name_words: list[str], description: str) -> str | None:
    """The category a parameter's name names, else the one its description names first; None if neither."""
    words = set(name_words)
    for cat, names, _, _ in CATEGORIES:
        if words & names:
            return cat
    described = _WORD.findall(description.lower())
    for word in described:
        for cat, names, _, _ in CATEGORIES:
            if word in names:
                return cat
    return None


def values(cat: str) -> tuple[str, ...]:
    return _BY_NAME[cat][0]


def clauses(cat: str) -> tuple[str, ...]:
    return _BY_NAME[cat][1]
