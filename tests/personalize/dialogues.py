"""Scripted dialogues we wrote for the tracker's tests: two personas, with unrelated turns."""

#: Cares about tradition and security; turns marked False say nothing about values.
TRADITION_SECURITY: list[tuple[str, bool]] = [
    ("Hi! Can you help me plan the week?", False),
    ("Every Sunday we still gather at my grandmother's table, the way our family always has, "
     "and I would never miss it.", True),
    ("I keep our savings in a safe account and a three-month emergency fund, because I want "
     "my family to be protected whatever happens.", True),
    ("By the way, what's a good temperature to bake bread at?", False),
    ("I think young people should learn the old customs and holidays before they are "
     "forgotten for good.", True),
    ("We moved to a quiet street with good locks and a neighbourhood watch; feeling safe at "
     "home matters more to me than anything.", True),
    ("The bus to the city centre leaves at half past eight.", False),
    ("I married in the church where my parents and grandparents married, following every "
     "ritual of our faith.", True),
    ("Stable rules and a strong police force keep our town safe and orderly.", True),
    ("Do you know how many grams are in a cup of flour?", False),
    ("Honouring the traditions handed down to us is how we respect those who came before.",
     True),
    ("I avoid risky investments and always lock the doors twice before bed, just to be sure "
     "we are secure.", True),
]

#: Cares about self-direction and stimulation.
INDEPENDENCE_ADVENTURE: list[tuple[str, bool]] = [
    ("Hello, I have a few questions today.", False),
    ("I quit my office job to work on my own ideas; I need to decide for myself what I do "
     "and how.", True),
    ("Last month I went skydiving for the first time and I already want to try cave diving "
     "next.", True),
    ("What's the capital of Canada again?", False),
    ("I love figuring things out on my own instead of following a manual someone else wrote.",
     True),
    ("Every year I travel somewhere I have never been, the stranger and more exciting the "
     "better.", True),
    ("The printer on our floor is out of paper.", False),
    ("Nobody gets to tell me what to think; I form my own opinions and choose my own path.",
     True),
    ("Routine bores me to death; I want new experiences, surprises and challenges all the "
     "time.", True),
    ("How long should I boil an egg?", False),
    ("I taught myself to code and built my own app because I wanted to create something "
     "that was mine.", True),
    ("This weekend I'm trying white-water rafting, something thrilling and completely new "
     "for me.", True),
]
