import keras_bert
from tests.test_case import shared_path
from keras_bert.text import words


def test_split_words_like_bert():
    text = "Dr. Smith (1895–1943) met 李雷 in São Paulo.\u3000Fine"
    spans = words.split_words(text)
    assert [text[s:e] for s, e in spans] == [
        "Dr", ".", "Smith", "(", "1895", "–", "1943", ")", "met", "李", "雷", "in", "São",
        "Paulo", ".", "Fine"]


def test_word_by_word_tokenization_matches_whole_text():
    tokenizer = keras_bert.load_tokenizer(shared_path("models", "all-MiniLM-L6-v2"))
    text = "Dr. Smith (1895–1943) met Ångström's friends in São Paulo, 2x faster!"
    pieces = words.tokenize_words(tokenizer, [[text[s:e] for s, e in words.split_words(text)]])
    flat = [int(i) for word in pieces[0] for i in word]
    assert flat == tokenizer.tokenize(text).numpy().tolist()
    assert words.tokenize_words(tokenizer, [[], ["a"]])[0] == []
