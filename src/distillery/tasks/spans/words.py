"""Word lists for the offline span teacher, as plain data.

Value pools (names, streets, companies...), the patterns identifiers and phone numbers are
drawn from, and the sentences and frames that carry them. `offline.py` holds the logic that
picks from them. In sentences a slot is written `{slot}` and gets a fresh value each time it
appears; everything outside the slots must name no person, place, date, amount or number,
or the gold answer would miss it.
"""

from __future__ import annotations

# Words that name a kind. A type's name is read right to left, since its head noun comes last
# ("order_total" is an amount, "order_date" a date); its description left to right, since there
# the head noun comes first ("the total amount of the order").
KIND_WORDS = {
    "email": {"email", "emails", "mail"},
    "phone": {"phone", "phones", "telephone", "mobile", "cell", "tel", "fax", "whatsapp"},
    "date": {"date", "dates", "dob", "birthday", "birthdate", "birth", "deadline", "day", "datetime",
             "timestamp", "expiry", "expiration"},
    "time": {"time", "times", "hour", "clock"},
    "identifier": {"id", "ids", "identifier", "identifiers", "account", "acct", "passport", "ssn",
                   "iban", "order", "orders", "invoice", "ticket", "tracking", "reference", "ref",
                   "booking", "confirmation", "license", "licence", "serial", "membership", "card"},
    "amount": {"amount", "amounts", "money", "monetary", "price", "prices", "cost", "fee", "fees",
               "total", "salary", "balance", "refund", "charge", "payment", "sum", "currency", "fare"},
    "address": {"street", "postal", "mailing", "residence", "zip", "postcode", "addr"},
    "organization": {"organization", "organisation", "organizations", "org", "company", "companies",
                     "employer", "business", "firm", "vendor", "merchant", "bank", "institution",
                     "corporation", "brand", "store", "retailer", "supplier", "agency", "insurer"},
    "location": {"location", "locations", "loc", "gpe", "city", "cities", "town", "country",
                 "countries", "place", "region", "destination", "origin", "province"},
    "person": {"person", "persons", "per", "people", "customer", "client", "patient", "employee",
               "user", "contact", "sender", "recipient", "author", "caller", "individual",
               "fullname", "firstname", "surname", "applicant", "passenger", "guest", "agent"},
}
# Words too general to decide alone: a "company name" is an organization, a "phone number" a
# phone, an "email address" an email. They decide only when no word above does.
WEAK_WORDS = {"name": "person", "names": "person", "number": "identifier", "numbers": "identifier",
              "address": "address", "addresses": "address"}
# Which identifier an identifier type means: the first of these its words name; none: any.
ID_WORDS = (
    ("iban", {"iban", "bank"}), ("passport", {"passport"}), ("ssn", {"ssn", "social"}),
    ("card", {"card", "credit", "debit"}), ("tracking", {"tracking", "shipment", "parcel"}),
    ("invoice", {"invoice", "bill", "receipt"}), ("order", {"order", "orders", "purchase"}),
    ("reference", {"ticket", "case", "reference", "ref", "booking", "confirmation", "reservation"}),
    ("account", {"account", "acct", "customer", "member", "membership", "client"}),
)

# In patterns: "#" is any digit, "%" a digit from 2 to 9, "@" an uppercase letter, "~" a "#".

FIRST_NAMES = (
    "Priya", "Sarah", "Tom", "Diego", "Aisha", "Liam", "Mei", "Omar", "Chloe", "Kenji", "Fatima",
    "Noah", "Elena", "Marcus", "Yuki", "Hannah", "Raj", "Sofia", "Ben", "Amara", "Lucas", "Zoë",
    "Ivan", "Grace", "Mateo", "Nadia", "Oliver", "Leila", "Samuel", "Ana", "Jonas", "Ruth",
    "Tariq", "Emma", "Kwame", "Inès", "Felix", "Maya", "Hugo", "Julia", "Ahmed", "Clara",
    "Daniel", "Rosa", "Ethan", "Lina", "Victor", "Nora", "Pablo", "Ayla", "José", "Siobhan",
    "Wei", "Olga", "Thabo", "Margaret", "Kofi", "Anjali", "Björn", "Camille", "Dmitri", "Ngozi",
)
LAST_NAMES = (
    "Patel", "Chen", "Becker", "Garcia", "Okafor", "Nguyen", "Rossi", "Kim", "Silva", "Haddad",
    "Novak", "Tanaka", "Murphy", "Schmidt", "Lopez", "Cohen", "Ali", "Brown", "Dubois", "Larsen",
    "Müller", "O'Brien", "Kowalski", "Fernandes", "Ivanova", "Mensah", "Yamamoto", "Singh",
    "Andersson", "Moreau", "Wright", "Hernández", "Sato", "Abdullah", "Walker", "Papadopoulos",
    "Johansson", "Reyes", "Osei", "Fischer", "MacLeod", "Gupta", "Jansen", "Costa", "Thompson",
)
MIDDLE_INITIALS = "ABCDEGHJKLMRST"
EMAIL_DOMAINS = (
    "gmail.com", "outlook.com", "yahoo.co.uk", "proton.me", "icloud.com", "hotmail.com",
    "web.de", "orange.fr", "northwind-logistics.com", "acme.io", "brightwave.co", "uni-bonn.de",
)

PHONE_PATTERNS = (
    "+1 %## %## ####", "(%##) %##-####", "%##-%##-####", "%##.%##.####", "+1 (%##) %##-####",
    "+44 20 #### ####", "+44 7### ######", "07### ######", "+49 30 ########", "+49 151 ########",
    "030 #######", "+33 6 ## ## ## ##", "06 ## ## ## ##", "+91 9#### #####", "+61 4## ### ###",
    "+81 3-####-####", "+34 6## ### ###", "+55 11 9####-####", "+353 8# ### ####",
)

STREETS = (
    "Maple", "Oak", "Elm", "Cedar", "Park", "Lake", "Hill", "Washington", "Church", "Mill",
    "King", "Queen", "Station", "Victoria", "High", "Willow", "Sunset", "Jefferson", "Pine",
)
STREET_SUFFIXES = ("Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Boulevard",
                   "Court", "Way", "Place")
US_CITIES = (
    ("Springfield", "IL"), ("Austin", "TX"), ("Portland", "OR"), ("Denver", "CO"),
    ("Columbus", "OH"), ("Madison", "WI"), ("Raleigh", "NC"), ("Tucson", "AZ"), ("Boise", "ID"),
    ("Albany", "NY"), ("San Jose", "CA"), ("Tampa", "FL"),
)
UK_CITIES = ("London", "Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff", "Edinburgh")
DE_STREETS = ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Lindenallee",
              "Goethestraße", "Am Markt")
DE_CITIES = ("Berlin", "Hamburg", "München", "Köln", "Leipzig", "Frankfurt am Main")
FR_STREETS = ("rue de la Paix", "avenue Victor Hugo", "rue du Moulin", "boulevard Voltaire",
              "rue des Lilas", "place de la République")
FR_CITIES = ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Bordeaux")

CITIES = (
    "Lisbon", "Tokyo", "Nairobi", "Toronto", "Berlin", "Mexico City", "Cape Town", "Buenos Aires",
    "Seoul", "Mumbai", "Sydney", "Chicago", "Dublin", "Oslo", "Prague", "Vienna", "Boston",
    "Seattle", "Lagos", "Cairo", "Lima", "Madrid", "Amsterdam", "Istanbul", "Bangkok", "Hanoi",
    "São Paulo", "Zurich", "Singapore", "Dubai", "Manchester", "Lyon", "Atlanta", "Montreal",
)
COUNTRIES = (
    "Germany", "Portugal", "Japan", "Kenya", "Canada", "Brazil", "India", "Australia", "Ireland",
    "Mexico", "Spain", "Poland", "South Africa", "Vietnam", "Norway", "Ghana", "Italy",
)

COMPANIES = (
    "Acme Corp", "Northwind Logistics", "Globex", "Initech", "Brightwave Energy", "Pinecrest Dental",
    "Amazon", "FedEx", "DHL", "Vodafone", "Deutsche Bank", "Barclays", "Lufthansa", "Stripe",
    "Mayo Clinic", "Harvard University", "IKEA", "Spotify", "Air Canada", "Revolut", "Zalando",
    "Blue Harbor Insurance", "Sunrise Bakery", "Contoso Ltd", "Fabrikam Inc.", "Orion Telecom",
    "Greenleaf Pharmacy", "Summit Credit Union", "Hilltop Veterinary Clinic", "Bosch",
)
COMPANY_STEMS = ("Riverside", "Evergreen", "Silverline", "Redwood", "Bluebird", "Keystone", "Harbor")
COMPANY_TRADES = ("Plumbing", "Dental", "Logistics", "Software", "Insurance", "Realty", "Foods")
COMPANY_SUFFIXES = ("", "", "Ltd", "Inc.", "LLC", "GmbH", "& Co.")

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

# (before, after, decimals, decimal comma): "$1,249.99", "1,200 EUR", "89,50 €", "¥12,000".
CURRENCIES = (
    ("$", "", 2, False), ("$", "", 0, False), ("€", "", 2, False), ("£", "", 2, False),
    ("£", "", 0, False), ("", "EUR", 2, False), ("USD ", "", 2, False), ("", "USD", 0, False),
    ("¥", "", 0, False), ("₹", "", 0, False), ("CHF ", "", 2, False), ("AUD ", "", 2, False),
    ("", "€", 2, True), ("R$ ", "", 2, True), ("", "GBP", 2, False),
)

# Identifier patterns by slot, the kind of number the sentence around them names.
ID_PATTERNS = {
    "order": ("~@-#####", "%#####", "ORD-####-#####", "#%######", "%##-%######-%######"),
    "account": ("ACC-#######", "%#########", "CUST-#####", "%#######", "MBR-####-###"),
    "iban": ("DE## #### #### #### #### ##", "GB## @@@@ #### #### #### ##",
             "FR## #### #### #### #### #### ###", "NL## @@@@ #### #### ##",
             "ES## #### #### #### #### ####", "DE####################"),
    "passport": ("@########", "@@#######", "#########", "##@@#####"),
    "ssn": ("1##-##-####", "2##-##-####", "3##-##-####", "4##-##-####", "5##-##-####"),  # no 9xx: never issued
    "reference": ("~#####", "CASE-######", "@@@%@%", "REF-@####", "TKT-######"),
    "invoice": ("INV-####-####", "INV######", "#####/##", "@@-####"),
    "card": ("4### #### #### ####", "5%## #### #### ####", "4###-####-####-####", "37## ###### #####"),
    "tracking": ("1Z###@@##########", "%###########", "RR#########GB", "JD01460000########",
                 "94## #### #### #### #### ##"),
}

# One sentence each, starting capitalised. Slots: person, email, phone, address, date, time,
# amount, org, location, and the identifier slots of ID_PATTERNS.
SENTENCES = (
    # person
    "Hi, this is {person}.", "My name is {person} and I'm writing about my last delivery.",
    "{person} from the front desk said someone would call me back.",
    "Can you forward this to {person}?", "I spoke with {person} but the issue is still open.",
    "Please add {person} to the thread.", "{person} will cover for me while I'm out.",
    "The package was signed for by {person}, who I don't know.",
    "According to {person}, the refund was already approved.",
    "Thanks again to {person} for sorting this out so quickly.",
    "I'm contacting you on behalf of my mother, {person}.", "Ask for {person} at reception.",
    "The account is in the name of {person}.", "Could {person} take a look at this?",
    "{person} and {person} both need access to the shared folder.",
    "I've copied {person}, who handled the original request, and {person} from billing.",
    "Please move the reservation from {person} to {person}.",
    # email
    "You can reach me at {email}.", "Please send the receipt to {email}.",
    "My login email is {email} but the reset link never shows up.",
    "I changed my email to {email}, please update your records.",
    "Reply to {email} rather than this address.", "The invoice went to {email}, which I no longer use.",
    "Can you add {email} to the mailing list?", "Please cc {email} and {email} on any updates.",
    "My old email was {email}, the new one is {email}.",
    # phone
    "Call me back at {phone}.", "My number is {phone}.", "You can text me on {phone} if that's easier.",
    "The courier tried to call {phone} but my phone never rang.",
    "Please update my mobile number to {phone}.", "Reach the site manager on {phone}.",
    "I'm on {phone}, ring me if anything changes.",
    "Try {phone} first, and if nobody picks up, {phone}.", "My work line is {phone} and my mobile is {phone}.",
    # address
    "Please ship it to {address}.", "I've moved, my new address is {address}.",
    "The parcel was delivered to {address} instead of my place.",
    "Our office is at {address}, second floor.", "Can you confirm the billing address is {address}?",
    "The technician should come to {address}.", "Change the delivery address from {address} to {address}.",
    # date
    "The appointment is on {date}.", "I placed the order on {date} and it still hasn't shipped.",
    "My subscription renews on {date}, please cancel it before then.",
    "Can we move the call to {date}?", "The contract ends on {date}.", "I was charged twice on {date}.",
    "The warranty expires on {date}.", "I'll be away from {date} to {date}.",
    "The booking was changed from {date} to {date} without asking me.",
    # time
    "Can you call me at {time}?", "The store closes at {time}.", "The meeting starts at {time} sharp.",
    "I'll be at the desk by {time}.", "I'm free between {time} and {time}.",
    # amount
    "I was charged {amount} but the listed price was lower.", "The refund of {amount} hasn't shown up yet.",
    "My balance says {amount}, which can't be right.", "Total due: {amount}.",
    "They quoted {amount} for the repair.", "Please reimburse the {amount} I paid for the taxi.",
    "I was billed {amount} instead of {amount}.", "The order came to {amount} plus {amount} for shipping.",
    # org
    "I'm calling from {org} about the open invoice.", "I bought it through {org}.",
    "{org} still hasn't processed my claim.", "I work at {org} and need a copy for my manager.",
    "Is this offer also valid for {org} customers?", "My previous provider was {org}.",
    "I'm switching from {org} to {org}.", "Both {org} and {org} say the other one is responsible.",
    # location
    "I'm currently in {location} and my card doesn't work here.", "The parcel is stuck in {location}.",
    "Is there a branch in {location}?", "I'll be travelling to {location} for work.",
    "Your warehouse in {location} keeps sending the wrong item.", "We're relocating to {location}.",
    "My flight from {location} to {location} was cancelled.",
    # identifiers
    "My order {order} never arrived.", "Order {order} was delivered damaged.",
    "I'd like to return everything in order {order}.", "Can you check the status of order {order}?",
    "Orders {order} and {order} were supposed to ship together.",
    "My account number is {account}.", "Customer ID {account}, in case you need it.",
    "The charge is on account {account}.", "Please close account {account}.",
    "My card number is {card}.", "The charge was made on card {card}, which I never use.",
    "Please remove card {card} from my account.",
    "Please send the refund to {iban}.", "My IBAN is {iban}.",
    "The transfer went to {iban} instead of my savings account.",
    "My passport number is {passport}.", "The booking still has my old passport, {passport}.",
    "Passport no. {passport}, still valid.",
    "My SSN is {ssn}.", "The form asks for a social security number, mine is {ssn}.",
    "Someone used my social security number {ssn} to open an account.",
    "This is about ticket {reference}.", "My booking reference is {reference}.",
    "Case {reference} was closed without an answer.", "Confirmation code: {reference}.",
    "Invoice {invoice} shows the wrong company name.", "I already paid invoice {invoice}.",
    "Please resend invoice {invoice} as a PDF.",
    "The tracking number {tracking} hasn't updated at all.", "Tracking: {tracking}.",
    "The courier says {tracking} was delivered, but nothing is here.",
    # several kinds
    "Hi, this is {person}, my order {order} never arrived, call me at {phone}.",
    "{person} here, my email is {email}.", "I'm {person} and I was charged {amount} on {date}.",
    "Please send the contract to {person} at {email}.",
    "Order {order} was shipped to {address} instead of my home.",
    "My order {order} from {date} still shows as pending.", "I paid {amount} with my {org} card and got nothing.",
    "{person} from {org} will join the call at {time}.", "Refund {amount} to {iban}, please.",
    "Invoice {invoice} for {amount} was due on {date}.", "Could {person} call me back on {phone}?",
    "Reach {person} at {email} or {phone}.", "The courier left parcel {tracking} at {address}.",
    "Our {location} office can be reached on {phone}.", "I'm flying to {location} on {date}.",
    "{org} charged me {amount} for a service I cancelled.", "Passport {passport}, holder {person}.",
    "Account {account} belongs to {person}.", "Ticket {reference}: {person} still can't log in.",
    "Meet {person} in {location} at {time}.", "The appointment with {person} is on {date} at {time}.",
    "My SSN is {ssn} and my phone is {phone}.", "Send the {amount} deposit to {iban} by {date}.",
    "{person} ({email}) asked to be removed from the list.", "Contact: {person}, {phone}.",
    "The {org} branch at {address} was closed.", "Ship to {person}, {address}.",
    "Tracking {tracking} shows it left {location}.", "I was charged {amount} for order {order}.",
    "Please update the email on account {account} to {email}.",
    "{person} at {org} promised a refund of {amount}.", "The delivery to {location} is booked for {date}.",
)

# Sentences with no span of any kind: fillers, and the whole text of a no-span candidate.
# Some name the things spans are made of ("my order", "the phone") without giving one.
NEUTRAL = (
    "The app keeps logging me out.", "I've been waiting for ages and nobody has replied.",
    "Thanks for the quick reply.", "The package arrived damaged.",
    "Could you look into this as soon as possible?", "I can't find the cancel button anywhere.",
    "The tracking page hasn't updated.", "Nobody answered when I called.",
    "Please let me know if you need anything else.", "The discount code didn't work at checkout.",
    "I'd like a refund, not store credit.", "The screen goes black after the update.",
    "Is there someone I can talk to directly?", "I already tried turning it off and on again.",
    "My order never arrived.", "The invoice has the wrong amount on it.",
    "I got charged twice for the same thing.", "Please don't call me, email is better.",
    "The replacement part is the wrong size.", "Sorry for the late reply.",
    "Happy to jump on a call if that helps.", "I changed my password but still can't sign in.",
    "The delivery driver left it outside in the rain.", "Can you send me a copy of the receipt?",
    "Let me know what you need from my side.", "The form won't submit.",
    "It says my card was declined, but it works everywhere else.", "Really appreciate the help.",
    "I have attached a screenshot.", "This is the third time I'm writing about this.",
    "Could you double-check my details?", "I moved recently, so my address has changed.",
    "The website shows the item in stock but won't let me buy it.", "Please close this ticket.",
    "The meeting notes are in the shared folder.", "Looking forward to hearing from you.",
    "What's the best way to update my phone number?", "Where do I find my account number?",
)

# Frames: the kind of text around the sentences.
GREETINGS = ("Hi,", "Hello,", "Dear support team,", "Hi there,", "To whom it may concern,", "Hey team,")
SIGNOFFS = ("Thanks", "Best regards", "Kind regards", "Cheers", "Thank you", "Best")
CHAT_OPENERS = ("", "", "", "hey, ", "hi! ", "hello, ", "ok so ", "quick question: ")
CHAT_CLOSERS = ("", "", "", " thanks!", " thx", " cheers", " ty")
SUBJECTS = (
    "Delivery problem", "Refund request", "Wrong item received", "Billing question",
    "Account access", "Update my details", "Complaint", "Urgent: payment issue",
    "Change of address", "Cancellation", "Question about my order",
)
NOTE_HEADS = ("Note: ", "Call notes: ", "Reminder: ", "Follow-up: ", "Memo: ", "")
AGENT_LINES = ("How can I help you today?", "Sorry to hear that, let me check.",
               "Could you give me a few more details?", "Thanks, one moment please.")
# A form's field labels, by slot.
FORM_LABELS = {
    "person": ("Name", "Full name", "Customer name", "Contact person"),
    "email": ("Email", "E-mail", "Email address"), "phone": ("Phone", "Mobile", "Tel."),
    "address": ("Address", "Shipping address", "Billing address"),
    "date": ("Date", "Date of request", "Preferred date"), "time": ("Time", "Preferred time"),
    "amount": ("Amount", "Total", "Amount paid"), "org": ("Company", "Organization", "Employer"),
    "location": ("City", "Location", "Destination"), "order": ("Order", "Order no."),
    "account": ("Account", "Customer ID"), "iban": ("IBAN", "Bank account"),
    "passport": ("Passport", "Passport number"), "ssn": ("SSN", "Social security number"),
    "reference": ("Reference", "Ticket"), "invoice": ("Invoice", "Invoice no."),
    "card": ("Card number", "Credit card"), "tracking": ("Tracking", "Tracking number"),
}
FORM_SEPARATORS = ("\n", "\n", " | ", "; ")
