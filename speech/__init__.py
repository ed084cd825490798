"""Offline speech for the IVR: prompts (pyttsx3/espeak-ng, cached mu-law WAV), Twilio Media
Streams parsing, vosk recognition with grammars, and matching utterances to menu options.

Imports nothing of ours but the standard library, aiohttp (the prompt handler), vosk and
pyttsx3 (lazily). Entry points: `speech.recognizer.SpeechRecognizer`,
`speech.voice_turn.run_turn`, `speech.prompts.PromptCache`, `speech.settings.SpeechSettings`.
"""
