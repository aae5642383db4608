"""Sentence templates for the PII development set (``bench.devsets.pii``), all written for it.

Placeholders in braces (``{PERSON}``, ``{CARD}``, ``{NEAR_UUID}``...) are filled by ``bench.devsets.pii``;
``FILLER`` sentences hold no personal data, but do hold capitalised words, numbers, dates and product
names that a detector must leave alone.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CHAT_OPENERS", "CLOSINGS", "FILLER", "NEAR_MISS_SENTENCES", "PII_SENTENCES"]

CHAT_OPENERS: Final[dict[str, tuple[str, ...]]] = {
    "ticket": (
        "Summarize this support ticket and suggest a reply.\n\nTicket:",
        "Classify the urgency of the following customer message.\n",
        "Customer wrote in via the help widget:",
    ),
    "email": (
        "Draft a polite answer to this email:\n\nHi {FIRST},",
        "Please proofread the email below.\n\nDear {PERSON},",
        "Rewrite this in a friendlier tone:\n\nHello team,",
    ),
    "crm": (
        "CRM note (account {COMPANY}):",
        "Extract the action items from these call notes.\nNotes:",
        "Update the lead record from this note:",
    ),
    "code": (
        "Why does this script fail?\n\n```python",
        "Can you review this config?\n```yaml",
        "Fix the bug in the snippet below.\n```",
    ),
    "chat": (
        "hey, quick question",
        "Can you help me fill out this form?",
        "I need help writing a message to my landlord.",
    ),
}

PII_SENTENCES: Final[dict[str, tuple[str, ...]]] = {
    "ticket": (
        "My name is {PERSON} and I was charged twice on my card {CARD} last week.",
        "Please send the refund to IBAN {IBAN}, account holder {PERSON}.",
        "You can reach me at {PHONE} or by email at {EMAIL}.",
        "The shipment should go to {ADDRESS} instead of the old address.",
        "For verification, my DOB is {DOB} and the last order was {NEAR_ORDER_NUMBER}.",
        "Our server at {IPV4} started returning 502 errors after the update.",
        "The login attempts came from {IPV6}, which is not one of ours.",
        "I already spoke with {PERSON} from your billing team on {DATE}.",
        "My SSN is {SSN} if you need it for the tax form.",
        "Someone used my Visa {CARD} at {COMPANY} without my permission.",
    ),
    "email": (
        "I am forwarding the contract that {PERSON} signed on {DATE}.",
        "Please wire the deposit to {IBAN} before Friday.",
        "My new mailing address is {ADDRESS}.",
        "Call me on {PHONE} when you land in {CITY}.",
        "You can also cc {EMAIL} on the thread.",
        "{PERSON} will join the call instead of me.",
        "The applicant was born on {DOB} in {CITY}.",
        "Here is the token for the staging API: {JWT}",
    ),
    "crm": (
        "Spoke with {PERSON} ({EMAIL}), decision maker at {COMPANY}.",
        "Contact phone: {PHONE}. Prefers calls after 3 pm.",
        "Billing address: {ADDRESS}.",
        "Date of birth: {DOB}. SSN on file: {SSN}.",
        "Payment method updated to card ending in {CARD}.",
        "Introduced by {PERSON}, follow up with {FIRST} next week.",
        "Customer IP at signup: {IPV4}.",
        "Refund account: {IBAN} (verified by {PERSON}).",
    ),
    "code": (
        'client = OpenAI(api_key="{KEY}")',
        "export OPENAI_API_KEY={KEY}",
        'DATABASE_URL = "{URL_CREDS}"',
        "headers = {{'Authorization': 'Bearer {JWT}'}}",
        "aws_secret_access_key = {AWS_SECRET}",
        'db_password = "{PASSWORD}"',
        "key.pem contains:\n{PEM}\n",
        "github:\n  token: {KEY}\n",
        "ALLOWED_HOSTS = ['{IPV4}', 'localhost']",
        "# author: {PERSON} <{EMAIL}>",
    ),
    "chat": (
        "my name is {PERSON}, i live at {ADDRESS}",
        "my number is {PHONE} and my email is {EMAIL}",
        "i was born on {DOB}, do i qualify for the senior discount?",
        "my social is {SSN}, is it safe to put that on the form?",
        "can you check if {CARD} is still valid?",
        "my friend {PERSON} said you could help",
        "the router says my ip is {IPV4}",
        "DOB {DOB}, name {PERSON}",
    ),
}

CLOSINGS: Final[dict[str, tuple[str, ...]]] = {
    "ticket": ("\n\nThanks,\n{PERSON}", "\n\nRegards, {PERSON}", "\n\n-- {FIRST}"),
    "email": ("\n\nBest regards,\n{PERSON}\n{COMPANY}", "\n\nCheers,\n{FIRST}", "\n\nThanks!"),
    "crm": ("\nOwner: {PERSON}", "\nNext step: send proposal.", "\nLogged by {PERSON}."),
    "code": ("\n```", "\n```\nThanks in advance!", "\n```\n(Python {NEAR_VERSION})"),
    "chat": (" thanks", " thx!!", " - {FIRST}"),
}

FILLER: Final[dict[str, tuple[str, ...]]] = {
    "ticket": (
        "The app keeps crashing when I open the Settings page on my iPhone.",
        "I have tried reinstalling it twice and clearing the cache.",
        "This has been going on since Monday and it is really frustrating.",
        "Your FAQ says refunds take 5 to 7 business days, but it has been three weeks.",
        "I would appreciate a quick answer because I travel to New York next week.",
        "The Premium plan was supposed to include priority support.",
        "Nothing in the Help Center explains this error message.",
        "Order confirmation arrived, but the tracking link shows nothing.",
        "Please escalate this to someone in Customer Success if needed.",
        "The Android version works fine, only the web dashboard is broken.",
    ),
    "email": (
        "I hope this message finds you well.",
        "Following up on our conversation from last Tuesday about the Q3 roadmap.",
        "Let me know if the attached draft works for you.",
        "We are still waiting on the legal review from the Berlin office.",
        "The quarterly numbers look better than expected, especially in EMEA.",
        "Could we move the sync to Thursday at 10 am?",
        "I will be out of office from the 12th to the 19th.",
        "Thanks again for the quick turnaround on the proposal.",
        "The board meeting has been moved to the Grand Hyatt conference room.",
        "Happy to discuss further over a call.",
    ),
    "crm": (
        "Interested in the Enterprise tier, budget approved for next quarter.",
        "Currently using Salesforce but unhappy with the pricing.",
        "Asked for a demo of the analytics module and SSO integration.",
        "Renewal due in March; churn risk is medium.",
        "Mentioned that their team in Austin will grow to 40 people.",
        "Wants a discount of 15 percent for a two-year commitment.",
        "Sent the case study about Northwind and the pricing sheet.",
        "Procurement requires a security questionnaire before signing.",
    ),
    "code": (
        "import os\nimport requests",
        "resp = requests.get(url, timeout=30)",
        "for item in items:\n    print(item['id'], item['status'])",
        "logging.basicConfig(level=logging.INFO)",
        "if resp.status_code != 200:\n    raise RuntimeError(resp.text)",
        "def load_config(path):\n    with open(path) as f:\n        return yaml.safe_load(f)",
        "retries: 3\ntimeout_seconds: 20",
        "It fails with KeyError: 'data' on the second page.",
        "I am running this on Ubuntu 22.04 with Docker Compose.",
    ),
    "chat": (
        "sorry if this is a dumb question lol",
        "i tried google but nothing useful came up",
        "the form asks for a lot of personal stuff and im not sure about it",
        "also can you make it sound more professional",
        "my sister says i should just call them but i hate phone calls",
        "its due tomorrow so kind of urgent",
        "ok so basically the landlord wont fix the heating",
        "does that make sense?",
    ),
}

# Each near-miss kind appears in at least one of these (``near_miss_texts`` relies on it).
NEAR_MISS_SENTENCES: Final[tuple[str, ...]] = (
    "My order {NEAR_ORDER_NUMBER} has not shipped yet.",
    "Reference order number {NEAR_ORDER_NUMBER} in your reply.",
    "The request id was {NEAR_UUID} according to the logs.",
    "Session {NEAR_UUID} expired after {NUM} seconds.",
    "The file checksum is {NEAR_HASH}.",
    "Deployed commit {NEAR_SHORT_SHA} to staging.",
    "We upgraded to version {NEAR_VERSION} yesterday.",
    "Chrome {NEAR_VERSION} shows a blank page.",
    "The reference number on the invoice is {NEAR_LUHN_FAILING_CARD}.",
    "Loyalty card number {NEAR_LUHN_FAILING_CARD} does not work at checkout.",
    "The account {NEAR_BAD_IBAN} was rejected by the bank as invalid.",
    "Is {NEAR_BAD_IBAN} a valid IBAN format?",
    "Replace {NEAR_PLACEHOLDER_KEY} with your own key before running.",
    'Set api_key="{NEAR_PLACEHOLDER_KEY}" in the config file.',
    "Tracking number {NEAR_TRACKING_NUMBER} shows no movement.",
    "The job started at {NEAR_TIMESTAMP} and never finished.",
    "The device MAC is {NEAR_MAC_ADDRESS}.",
    "This is tracked in {NEAR_TICKET_ID}, opened on {DATE}.",
    "The meeting with {COMPANY} is on {DATE} in {CITY}.",
)
