"""Word lists and sentence frames for the offline teacher.

Everything here is plain data: value pools (names, cities, times, messages...), the
request frames that wrap a request, and the verb tables used to turn a tool's name into
an action phrase. `offline.py` holds the logic that picks from them.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Sarah", "Tom", "Priya", "Diego", "Aisha", "Liam", "Mei", "Omar", "Chloe", "Kenji",
    "Fatima", "Noah", "Elena", "Marcus", "Yuki", "Hannah", "Raj", "Sofia", "Ben", "Amara",
    "Lucas", "Zoe", "Ivan", "Grace", "Mateo", "Nadia", "Oliver", "Leila", "Sam", "Ana",
    "Jonas", "Ruth", "Tariq", "Emma", "Kwame", "Ines", "Felix", "Maya", "Hugo", "Julia",
    "Ahmed", "Clara", "Daniel", "Rosa", "Ethan", "Lina", "Victor", "Nora", "Pablo", "Ayla",
    "Mom", "Dad", "Grandma", "Uncle Joe",
)
LAST_NAMES = (
    "Chen", "Becker", "Patel", "Garcia", "Okafor", "Nguyen", "Rossi", "Kim", "Silva", "Haddad",
    "Novak", "Tanaka", "Murphy", "Schmidt", "Lopez", "Cohen", "Ali", "Brown", "Dubois", "Larsen",
)
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "example.com", "acme.io", "work.org", "mail.com")

CITIES = (
    "Paris", "Lisbon", "Tokyo", "Austin", "Nairobi", "Toronto", "Berlin", "Mexico City",
    "Cape Town", "Buenos Aires", "Seoul", "Mumbai", "Sydney", "Denver", "Chicago", "Dublin",
    "Oslo", "Prague", "Vienna", "Boston", "Seattle", "Lagos", "Cairo", "Lima", "Madrid",
    "Rome", "Amsterdam", "Istanbul", "Bangkok", "Hanoi", "Auckland", "Reykjavik", "Miami",
    "Portland, Oregon", "Paris, France", "London, UK", "Cambridge, MA", "Vancouver, Canada",
    "Porto, Portugal", "Kyoto, Japan", "Austin, Texas", "Springfield, Illinois",
)
PLACES = (
    "the airport", "Union Station", "the nearest gas station", "Central Park", "the office",
    "home", "the train station", "the Louvre", "123 Main Street", "42 Elm Street",
    "the hospital", "the mall", "Pier 39", "the gym", "Golden Gate Park", "the city center",
    "221B Baker Street", "the stadium", "the library", "Terminal 2", "my hotel", "the beach",
)
TIMES = (
    "7 am", "7:30 am", "6:45 am", "8:15 am", "9 am", "10:45 am", "noon", "12:30 pm", "1 pm",
    "2:15 pm", "3 pm", "4:30 pm", "5 pm", "5:45 pm", "6 pm", "6:30 pm", "7:30 pm", "8 pm",
    "9:15 pm", "10 pm", "11 pm", "midnight", "5:30 am", "18:00", "19:30", "07:15",
    "half past six", "quarter to eight",
)
# Dates in the first tuple read without a preposition ("tomorrow"), the second after "on".
DATES_BARE = (
    "today", "tomorrow", "tonight", "the day after tomorrow", "this weekend", "next week",
    "next Monday", "next Tuesday", "next Wednesday", "next Thursday", "next Friday",
    "this Saturday", "this Sunday", "this Thursday",
)
DATES_ON = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    "March 3", "April 12", "June 21", "July 4", "September 15", "October 31", "December 24",
    "January 9", "May 5", "August 18", "November 2", "February 14", "the 15th",
)

MESSAGES = (
    "running 10 minutes late", "on my way", "can you grab milk on the way home?",
    "happy birthday!", "the meeting moved to 3", "call me when you land", "dinner is ready",
    "see you at the gym", "I left the keys under the mat", "thanks for today",
    "let's reschedule to Friday", "are we still on for lunch?", "good luck on your exam!",
    "just landed", "I'll be home by 8", "don't forget the tickets", "miss you already",
    "the package arrived", "can we talk later?", "I'm outside", "bring a jacket, it's cold",
    "the kids are asleep", "great job on the presentation", "where did you park?",
    "pizza tonight?", "the wifi password is on the fridge", "I got the job!",
    "meet me at the north entrance", "please feed the cat", "traffic is terrible",
    "good morning", "where is the train station?", "how much does this cost?",
    "nice to meet you", "I would like a table for two", "the invoice is attached",
    "please review the draft by Monday", "welcome to the team", "see you tomorrow",
)
NOTES = (
    "buy a new phone charger", "ideas for the garden: tomatoes, basil, mint",
    "the parking spot is B12", "gate code is 4471", "book recommendations from Ana",
    "call the insurance company about the claim", "gift ideas for Dad",
    "recipe: two eggs, one cup of flour, a pinch of salt", "questions for the doctor",
    "pack sunscreen and the blue towel", "the plumber comes on Thursday",
    "remember to back up the laptop", "sizes: shoes 42, shirt M", "flight lands at 6:40",
    "new wifi password is sunflower22", "return the library books", "Q3 goals: hire two engineers",
)
TITLES = (
    "Team standup", "Dentist appointment", "Lunch with Priya", "Project review", "Book club",
    "Yoga class", "Parent-teacher meeting", "Flight to Denver", "Quarterly planning",
    "Car service", "Birthday dinner", "Weekly sync", "Job interview", "Haircut",
    "Piano lesson", "Budget review", "Movie night", "Doctor visit", "Coffee chat",
    "Grocery ideas", "Travel checklist", "Meeting notes", "Q3 numbers", "Trip photos",
    "Invoice for March", "Quick question", "Party plans",
)
QUERIES = (
    "best pizza near me", "how tall is Mount Everest", "cheap flights to Rome",
    "how to fix a leaky faucet", "symptoms of the flu", "when does the farmers market open",
    "who won the world cup in 2010", "easy pasta recipes", "movie times tonight",
    "how to tie a tie", "python list comprehension", "how long to boil an egg",
    "distance from earth to the moon", "used bikes for sale", "best hiking trails nearby",
    "how to change a tire", "vegan brownie recipe", "what is a black hole",
    "top rated coffee makers", "history of the Roman empire", "how to grow tomatoes",
    "train schedule to Boston", "opening hours of the post office", "healthy breakfast ideas",
)
TASKS = (
    "call the dentist", "take out the trash", "pick up the dry cleaning", "water the plants",
    "pay the electric bill", "buy a birthday gift for Mom", "take my medicine",
    "book a haircut", "feed the cat", "submit the expense report", "renew my passport",
    "check the oven", "move the car", "charge my laptop", "call Grandma", "stretch",
    "send the invoice", "pick up the kids", "drink some water", "walk the dog",
    "cancel the gym membership", "return the library books", "start the laundry",
)
LABELS = (
    "pasta", "laundry", "tea", "eggs", "pizza", "workout", "break", "meditation", "nap",
    "cookies", "rice", "parking", "oven", "bread", "study", "gym", "wake up", "pills",
    "school run", "meeting", "focus", "stretch",
)
LIST_NAMES = ("groceries", "weekend", "party", "hardware", "Costco", "pharmacy", "camping")
MUSIC = (
    "Bohemian Rhapsody", "Taylor Swift", "lo-fi beats", "my workout playlist", "jazz",
    "the Beatles", "Abbey Road", "Blinding Lights", "classical piano", "Daft Punk",
    "90s hip hop", "Kind of Blue", "Fleetwood Mac", "chill acoustic", "Beyonce",
    "Miles Davis", "Dancing Queen", "Hotel California", "rainy day jazz", "Adele",
    "Kendrick Lamar", "Clair de Lune", "Here Comes the Sun", "deep focus", "Bad Bunny",
)
GROCERIES = (
    "milk", "eggs", "bread", "butter", "bananas", "apples", "coffee", "rice", "olive oil",
    "chicken breast", "spinach", "tomatoes", "onions", "garlic", "cheddar cheese", "yogurt",
    "pasta", "orange juice", "paper towels", "dish soap", "toilet paper", "cereal",
    "avocados", "oat milk", "peanut butter", "carrots", "lemons", "tortillas", "honey",
)
DISHES = (
    "margherita pizza", "pad thai", "chicken tikka masala", "garlic bread", "caesar salad",
    "spring rolls", "veggie burger", "fries", "sushi platter", "miso soup", "burrito bowl",
    "pepperoni pizza", "ramen", "falafel wrap", "chocolate cake", "iced tea", "mango lassi",
    "nachos", "fried rice", "dumplings", "green curry", "onion rings",
)
RESTAURANTS = (
    "Luigi's", "Golden Dragon", "Taco Loco", "Sakura Sushi", "The Burger Joint",
    "Thai Orchid", "Pizza Palace", "Green Bowl", "Bombay Spice", "Noodle House",
    "Chipotle", "Five Guys", "Cafe Luna", "Pho 88",
)
LANGUAGES = (
    "Spanish", "French", "German", "Italian", "Japanese", "Portuguese", "Korean", "Chinese",
    "Arabic", "Hindi", "Dutch", "Russian", "Turkish", "Greek", "Swedish", "Polish", "English",
)
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "INR", "MXN", "BRL", "CNY", "SEK")
SYMBOLS = (
    "AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA", "META", "NFLX", "IBM", "DIS", "JPM",
    "ORCL", "INTC", "AMD", "SHOP", "UBER", "NKE", "SBUX",
)
COLORS = ("red", "blue", "green", "warm white", "purple", "orange", "yellow", "pink", "teal")
ROOMS = (
    "kitchen", "living room", "bedroom", "office", "bathroom", "hallway", "garage",
    "dining room", "basement", "nursery", "guest room", "patio", "kids' room",
)
DEVICES = (
    "kitchen speaker", "living room TV", "bedroom speaker", "headphones", "office speaker",
    "car stereo", "soundbar",
)
URLS = ("example.com", "news.ycombinator.com", "wikipedia.org", "github.com", "bbc.co.uk")
GENERIC_TEXT = (
    "alpha", "weekly report", "project x", "draft", "summer trip", "blue", "home", "personal",
    "north wing", "version two", "backup", "test run", "main account", "old laptop",
)
# Units as written after a number, keyed by a word found in the quantity's description.
UNITS = {
    "weight": ("kg", "lbs", "pounds", "kilograms"),
    "heart": ("bpm",),
    "steps": ("steps",),
    "sleep": ("hours",),
    "pressure": ("mmHg",),
    "temperature": ("celsius", "fahrenheit"),
    "distance": ("km", "miles", "meters"),
    "area": ("cm", "meters", "inches", "feet"),
    "length": ("cm", "meters", "inches", "feet"),
    "duration": ("minutes", "hours", "seconds"),
}
LENGTH_UNITS = ("cm", "meters", "inches", "feet")

SMALL_TALK = (
    "thanks!", "thank you so much", "what's the capital of Peru?", "tell me a joke",
    "how are you?", "good morning", "who are you?", "what can you do?", "never mind",
    "that's all for now", "you're awesome", "lol", "ok cool", "what's the meaning of life?",
    "write me a poem about the sea", "how many legs does a spider have?", "who wrote Hamlet?",
    "do you dream?", "I'm bored", "what's your favorite color?", "good night",
    "can you keep a secret?", "sing me a song", "what year did the Titanic sink?",
    "why is the sky blue?", "are you a robot?", "tell me something interesting",
    "I had a long day", "what should I name my dog?", "how do magnets work?",
    "recommend a good book", "what's the tallest animal?", "is a tomato a fruit?",
    "explain quantum physics simply", "what rhymes with orange?", "hello there",
    "you're funny", "ugh, mondays", "what's the best pizza topping?", "I love you",
    "who painted the Mona Lisa?", "how old is the universe?", "say something nice",
    "what language do they speak in Brazil?", "can penguins fly?", "I'm hungry",
    "what's the speed of light?", "cool, thanks", "nothing, sorry", "oops, wrong button",
    "who invented the telephone?", "what's a haiku?", "give me a fun fact",
    "how do I get better at chess?", "which is bigger, a whale or an elephant?",
    "what's the plural of octopus?", "any advice for a job interview?", "bye!",
    "what does DNA stand for?", "how many continents are there?", "tell me a riddle",
    "are you there?", "what's your name?", "that was helpful", "how do planes stay up?",
    "summarize the plot of Romeo and Juliet", "is coffee bad for you?",
)
SMALL_TALK_OPENERS = ("", "", "", "hey, ", "ok ", "hmm, ", "so ", "hi! ", "um, ", "quick question, ",
                      "random question: ", "well, ")
SMALL_TALK_CLOSERS = ("", "", "", " lol", " haha", " :)", " hehe", " ok")

# Request frames: (id, template, speaker). Frames where the user speaks of themself
# ("I need to {c}") do not fit actions that already say "me" ("remind me to...").
FRAMES = (
    ("bare", "{c}", False), ("please", "please {c}", False), ("please_end", "{c}, please", False),
    ("please_tight", "{c} please", False), ("can_you", "can you {c}?", False),
    ("could_you", "could you {c}?", False), ("for_me", "could you {c} for me?", True),
    ("would_you", "would you {c}?", False), ("can_you_please", "can you please {c}?", False),
    ("need", "I need to {c}", True), ("want", "I want to {c}", True),
    ("like", "I'd like to {c}", True), ("need_you", "I need you to {c}", False),
    ("hey", "hey, {c}", False), ("hey_can", "hey, can you {c}?", False),
    ("hi", "hi! please {c}", False), ("ok", "ok, {c}", False), ("help", "help me {c}", True),
    ("lets", "let's {c}", True), ("go_ahead", "go ahead and {c}", False),
    ("quick", "quick one: {c}", False), ("favor", "do me a favor and {c}", False),
    ("pls", "pls {c}", False), ("wanna", "I wanna {c}", True), ("thanks", "{c}, thanks", False),
    ("now", "{c} now", False), ("asap", "{c} asap", False), ("real_quick", "real quick, {c}", False),
    ("mind", "would you mind if we {c}?", True), ("time_to", "time to {c}", True),
)
QUESTION_FRAMES = (
    ("q", "{q}?"), ("q_hey", "hey, {q}?"), ("q_plain", "{q}"), ("q_quick", "quick question: {q}?"),
    ("q_know", "do you know {q}?"), ("q_so", "so {q}?"),
)
# Leads for numbers given in the order of the tool's parameters ("the LCM of 18 and 12").
POSITIONAL_LEADS = ("of ", "of ", "for ", "with ", "given ", "using ", "")
# Joins two requests into one utterance (parallel calls).
JOINERS = (" and also ", ", and then ", ". Then ", ". Also, ", " and ", ", then ",
           "; after that, ", ". And ", ", plus ")

# Words that start an action phrase; a name or description starting with one is an order.
VERBS = frozenset("""
get set create add send make play log search find book call track order convert translate
navigate control calculate compute check list update delete remove start stop cancel schedule
fetch retrieve lookup look open close turn read write post share buy sell pay transfer reserve
record measure count generate analyze predict estimate compare sort filter show display draw
plot solve mute unmute pause resume skip enable disable lock unlock download upload save load
run execute query request report submit register subscribe rate review recommend suggest
return determine identify evaluate validate verify parse format encode decode extract
summarize classify detect monitor notify invite join leave rename move copy print scan
reset toggle adjust change edit apply assign browse list locate plan rent reorder refill
fill clear dim brighten raise lower increase decrease give take use
""".split())
PREPOSITIONS = frozenset("to from for on in into by with at of about".split())
# Verbs whose object reads best with "the" ("get the weather", "calculate the area").
THE_VERBS = frozenset("get check fetch retrieve show read find control lookup calculate compute "
                      "determine display monitor adjust estimate".split())
THE_NOUNS = frozenset("thermostat volume weather web lights temperature news time date "
                      "forecast traffic".split())
MASS_NOUNS = frozenset("music food text currency money traffic information data news info "
                       "advice help water".split())
NO_ARTICLE = frozenset("do my all some up down on off".split())
# Other ways to say a verb; the first is the verb itself.
VERB_SYNONYMS = {
    "get": ("get", "check", "look up", "tell me", "show me"),
    "create": ("create", "make", "add", "set up"),
    "send": ("send", "shoot"),
    "play": ("play", "put on"),
    "call": ("call", "ring", "phone"),
    "book": ("book", "get", "order"),
    "log": ("log", "record"),
    "add": ("add",),
    "order": ("order", "get"),
    "track": ("track", "check on"),
    "convert": ("convert", "change"),
    "navigate": ("navigate", "take me", "get me directions", "guide me"),
    "control": ("control", "adjust"),
    "calculate": ("calculate", "compute", "work out", "find"),
    "compute": ("compute", "calculate", "work out"),
    "start": ("start", "begin", "kick off"),
    "search": ("search",),
    "find": ("find", "look for"),
}
# Verbs whose direct object can be a parameter's value: "call Sarah", "play jazz".
SLOT_VERBS = {
    "play": {"music", "query"}, "call": {"person", "phone"}, "navigate": {"place", "destination"},
    "translate": {"message"}, "track": {"code"}, "order": {"dish", "grocery"}, "text": {"person"},
    "email": {"person", "email"}, "visit": {"place", "destination"},
}
# Idioms keyed by the object of send_*: how people address a person directly.
SEND_IDIOMS = {
    "message": ("text {slot}", "message {slot}", "send {slot} a message"),
    "sms": ("text {slot}", "send {slot} a text"),
    "text": ("text {slot}", "send {slot} a text"),
    "email": ("email {slot}", "send {slot} an email", "write an email to {slot}"),
    "mail": ("email {slot}", "write to {slot}"),
}
# Enum parameters with these words describe a kind of thing ("a comfort ride").
TYPE_WORDS = frozenset("type kind activity category style class tier genre size sport".split())
# How each kind of value is written as a clause: {v} the value, {u} its unit,
# {pw} the parameter's name in words.
CLAUSES = {
    "email": ("to {v}",), "phone": ("at {v}", "on {v}"), "url": ("{v}", "at {v}"),
    "place": ("in {v}", "for {v}"), "destination": ("to {v}",),
    "origin": ("from {v}", "with pickup at {v}", "starting from {v}"),
    "time": ("at {v}", "for {v}"), "datetime": ("{v}", "for {v}"),
    "language": ("in {v}",), "currency": ("in {v}",), "symbol": ("for {v}", "of {v}"),
    "code": ("{v}", "number {v}"), "room": ("in the {v}", "for the {v}"),
    "device": ("on the {v}", "for the {v}"), "color": ("in {v}", "to {v}"),
    "restaurant": ("from {v}", "at {v}"), "listname": ("to the {v} list", "on my {v} list"),
    "unit": ("in {v}",), "person": ("for {v}", "with {v}"),
    "message": ("saying {v}", "that says {v}", ": {v}", "with the text {v}"),
    "title": ("called {v}", "titled {v}", "with the {pw} {v}"),
    "query": ("for {v}", "about {v}"), "task": ("to {v}", "about {v}"),
    "label": ("labeled {v}", "called {v}", "with the label {v}"),
    "music": ("{v}",), "text": ("with {pw} {v}", "{pw} {v}"),
    "list:person": ("with {v}", "inviting {v}"), "list:grocery": ("with {v}", ": {v}"),
    "list:dish": (": {v}", "with {v}"), "list:number": ("of {v}", "{pw} {v}", "with {pw} {v}"),
    "duration": ("for {v} {u}", "lasting {v} {u}"),
    "distance": ("for {v} {u}", "of {v} {u}"),
    "measure": ("{v} {u}", "at {v} {u}", "of {v} {u}", ": {v} {u}"),
    "money": ("for {v} {u}", "of {v} {u}"),
    "number": ("{pw} {v}", "with {pw} {v}", "{pw} of {v}", "of {v}", "with a {pw} of {v}"),
}
# A quantity nothing else describes ("a=1", "base of 10", "where the height is 5"); a rate.
NUMBER_CLAUSES = CLAUSES["number"] + ("{pw}={v}", "{pw} = {v}", "{pw} is {v}", "where {pw} is {v}",
                                      "given {pw} {v}", "a {pw} of {v}", "{pw} as {v}")
# A one-letter parameter (a, b, x) is named as in a formula.
LETTER_CLAUSES = ("{pw}={v}", "{pw} = {v}", "{pw} is {v}", "where {pw} is {v}", "{pw} of {v}", "{pw} as {v}",
                  "with {pw} {v}", "{pw} {v}")
FRACTION_CLAUSES = ("{pw} of {v}", "a {pw} of {v}", "with a {pw} of {v}", "at {v}", "{pw} {v}", "{pw}={v}",
                    "at a {pw} of {v}")
# A parameter's role word overrides its kind's wording ("to Sarah", "from Italian").
ROLE_CLAUSES = (
    ({"to", "recipient", "recipients"}, ("to {v}",)),
    ({"cc", "bcc"}, ("cc {v}", "copying {v}")),
    ({"target", "into"}, ("into {v}", "to {v}")),
    ({"source", "from", "base"}, ("from {v}",)),
    ({"until", "till", "end"}, ("until {v}", "till {v}")),
    ({"delivery"}, ("for {v}", "by {v}")),
)
